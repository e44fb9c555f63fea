"""timeout: alive for the whole horizon, but the task was not achieved."""


def classify(case, episode):
    return "timeout" if episode.terminated is None and not episode.success else None
