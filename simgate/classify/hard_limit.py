"""An episode ended by a scenario's hard limit (simgate.limits): the limit is the outcome."""

from simgate.limits import HARD_LIMIT


def classify(case, episode):
    return HARD_LIMIT if episode.terminated == HARD_LIMIT else None
