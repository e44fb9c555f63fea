"""Failure-mode rules, one per module: ``classify(case, episode) -> mode | None``.

The built-in plugin asks them in ``ORDER``; plugins implementing ``simgate_classify_failure``
are asked first and may claim any episode.
"""

ORDER = ("simgate.classify.policy_error", "simgate.classify.diverged", "simgate.classify.terminated",
         "simgate.classify.timeout")
