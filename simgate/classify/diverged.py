"""diverged: MuJoCo flagged an unstable integration, or the state became non-finite or absurd."""

from simgate.engine.rollouts import DIVERGED


def classify(case, episode):
    return DIVERGED if episode.terminated == DIVERGED else None
