"""drift: alive to the horizon but off course, by the env's own ``drift`` signal (lateral or
heading deviation from the commanded path, averaged over the episode)."""

DEFAULT_BOUND = 0.3


def classify(case, episode):
    drift = episode.signals.get("drift")
    bound = (case.classify or {}).get("drift_bound", DEFAULT_BOUND)
    if episode.terminated is None and drift is not None and drift > bound:
        return "drift"
    return None
