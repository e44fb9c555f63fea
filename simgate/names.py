"""Answers to an unknown name: "did you mean" the closest valid one (a leaf: used by the registry,
the statistics, the YAML loaders and the engine alike)."""

from __future__ import annotations

import difflib


def did_you_mean(name: str, choices) -> str:
    """`` — did you mean 'x'?`` for the closest choice, or a list of the valid ones."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if not choices:
        return "; there are none to choose from"
    return "; valid: " + ", ".join(repr(c) for c in choices)
