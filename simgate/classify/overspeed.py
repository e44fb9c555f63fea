"""overspeed: a joint moved faster than the case's ``max_joint_speed`` allows (the verdict's own
per-joint rule, marked on the episode by the runner)."""


def classify(case, episode):
    return "overspeed" if episode.overspeed else None
