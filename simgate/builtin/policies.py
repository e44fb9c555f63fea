"""simgate ships no policies of its own; projects register theirs from manifests."""
