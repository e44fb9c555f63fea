"""This repository's own simgate plugins: its robots, its policies and its example extensions.

Like ``pytest_plugins``, ``simgate_plugins`` lists modules that simgate registers in its plugin
manager; each implements hooks from ``simgate/hookspecs.py``.
"""

simgate_plugins = ["envs", "policies", "plugins.stuck"]
