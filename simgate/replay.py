"""Moved to :mod:`simgate.cli.replay`; this name stays until every import uses the new one."""

from simgate.cli.replay import choose_gl, find_case, main, replay  # noqa: F401
