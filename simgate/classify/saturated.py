"""saturated: actuators at their force limit for a sustained share of the episode before it failed."""

DEFAULT_SHARE = 0.2


def classify(case, episode):
    share = case.classify.get("saturation_share", DEFAULT_SHARE) if case.classify else DEFAULT_SHARE
    return "saturated" if episode.saturation >= share else None
