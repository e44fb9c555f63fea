"""The env's own termination reason (``fell`` for a robot past its tilt or height limit)."""


def classify(case, episode):
    return episode.terminated
