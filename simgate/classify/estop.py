"""estop: the episode reached the env's e-stop condition (its ``estop`` signal, e.g. a tilt past
60°), where a real robot's motors would have been cut."""


def classify(case, episode):
    return "estop" if episode.signal_peaks.get("estop", 0.0) > 0 else None
