"""impact: a contact force above the case's ``max_contact_force`` (the env's ``contact_force`` signal)."""


def classify(case, episode):
    limit = (case.thresholds or {}).get("max_contact_force")
    if limit is None:
        return None
    return "impact" if episode.signal_peaks.get("contact_force", 0.0) > limit else None
