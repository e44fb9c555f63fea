"""What simgate's pytest plugin, its controller and the Ray scheduler share about the run's test
items (a leaf: it imports none of them): the case an item runs, the user property that carries a
case's record to the controller, and whether this process is an xdist worker."""

from __future__ import annotations

from pathlib import Path

PROPERTY = "simgate"  # the user property that carries a case's record (simgate.contract)


def is_worker(config) -> bool:
    """An xdist worker (the controller alone decides and writes the run's files)."""
    return hasattr(config, "workerinput")


def case_of(item):
    """The simgate case a test item runs (its ``simgate_case`` parameter), or None."""
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("simgate_case") if callspec is not None else None
    return case if hasattr(case, "id") else None  # an empty parametrization gives pytest's NOTSET


def arg_paths(config) -> list[Path]:
    """The paths pytest was given (``suites/``, ``scenarios/x.yaml``, ``tests/t.py::test``),
    resolved against the directory pytest was started in."""
    out = []
    for arg in config.args:
        path = Path(arg.split("::")[0])
        out.append((path if path.is_absolute() else Path(config.invocation_params.dir) / path).resolve())
    return out
