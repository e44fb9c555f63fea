"""policy_error: the policy raised, returned NaN/inf, or returned the wrong shape."""

from simgate.engine.rollouts import POLICY_ERROR


def classify(case, episode):
    return POLICY_ERROR if episode.terminated == POLICY_ERROR else None
