"""overspeed: a joint moved faster than the case's ``max_joint_speed`` allows."""

import numpy as np


def classify(case, episode):
    limit = (case.thresholds or {}).get("max_joint_speed")
    if limit is None or not len(episode.peak_joint_speed):
        return None
    if isinstance(limit, dict):  # per joint, by name: the case's joint names are not on the episode
        limit = min(limit.values())
    return "overspeed" if bool(np.any(episode.peak_joint_speed > limit)) else None
