"""nondeterministic: a re-run of the episode from the same seed did not reproduce it."""


def classify(case, episode):
    return "nondeterministic" if episode.nondeterministic else None
