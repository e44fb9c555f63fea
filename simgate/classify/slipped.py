"""slipped: the feet on the ground slid, on average over the episode, faster than a walking gait
scuffs them (the env's ``slip`` signal, m/s): the floor gave way under a policy that might have
held on a grippier one. Asked before ``saturated``, because motors that saturate while their
feet slide are a consequence, not the cause."""

DEFAULT_BOUND = 0.3


def classify(case, episode):
    slip = episode.signals.get("slip")
    bound = (case.classify or {}).get("slip_bound", DEFAULT_BOUND)
    return "slipped" if slip is not None and slip > bound else None
