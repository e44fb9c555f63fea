"""Failure-mode rules, one per module: ``classify(case, episode) -> mode | None``.

The built-in plugin asks them in ``ORDER``; plugins implementing ``simgate_classify_failure``
are asked first and may claim any episode.
"""

#: the more specific cause first: a robot that fell with its motors saturated is "saturated"
ORDER = ("simgate.classify.policy_error", "simgate.classify.diverged", "simgate.classify.hard_limit",
         "simgate.classify.nondeterministic",
         "simgate.classify.slipped", "simgate.classify.saturated", "simgate.classify.joint_limit", "simgate.classify.oscillating",
         "simgate.classify.estop", "simgate.classify.impact", "simgate.classify.overspeed", "simgate.classify.terminated", "simgate.classify.drift", "simgate.classify.timeout")
