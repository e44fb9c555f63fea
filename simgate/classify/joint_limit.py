"""joint_limit: a limited joint sat at its stop for a sustained share of the control steps.

The share (``episode.at_stops``) leaves out the joints the env lists in ``joint_limit_exclude``
(:mod:`simgate.engine.limits`): a joint that rests on its stop in the home pose is no failure."""

DEFAULT_SHARE = 0.1


def classify(case, episode):
    share = case.classify.get("stop_share", DEFAULT_SHARE) if case.classify else DEFAULT_SHARE
    return "joint_limit" if episode.at_stops >= share else None
