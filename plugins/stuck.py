"""An example failure mode added from outside the core: ``stuck``.

An episode that stayed up for the whole horizon but hardly moved toward its goal is more useful
to call "stuck" than the built-in "timeout". This plugin claims such episodes; the built-in rules
still decide every other one. Register yours the same way (``simgate_plugins`` in conftest.py,
or the ``simgate`` entry-point group of an installed package).
"""

from simgate.plugin_manager import hookimpl

#: progress below this (task units: metres for the shipped robots) counts as not having moved
MIN_PROGRESS = 0.1


@hookimpl
def simgate_classify_failure(case, episode):
    least = (case.classify or {}).get("stuck_progress", MIN_PROGRESS)  # a scenario may set its own
    if episode.terminated is None and not episode.success and abs(episode.progress) < least:
        return "stuck"
    return None
