"""Episode-ending reasons that the engine itself detects (envs add their own, e.g. "fell").

A leaf: the engine sets them, the verdict and the failure-mode classifiers read them."""

POLICY_ERROR = "policy_error"
DIVERGED = "diverged"
