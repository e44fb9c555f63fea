"""The box a search explores, parsed from a scenario's ``search:`` block.

An axis is ``<perturbation kind>.<param>``; the scenario lists that perturbation once and its
value there is the axis' nominal. A search varies an axis per episode by building, for each row,
an instance of the kind with the row's params whose ``start`` draws the episode's world (the
engines' ``overrides``). So only params that act through ``start`` can be searched: not a
spec-stage kind (it edits the model once per case), not a kind that imposes a control rate, not
a kind whose per-step methods read ``self.params`` (``per_step_params``), and only a number.

All the search's math works in the unit cube; :meth:`Space.to_units` maps a point to axis units
and snaps a param that must lie on the simulation's clock (a delay: whole physics steps), so
every row that runs is a row the kind accepts.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from simgate.errors import InputError
from simgate.names import did_you_mean
from simgate.perturbations.base import Perturbation

#: params that must be a whole number of a clock period: (kind, param) -> which period, in ms
SNAPPED = {("delay_actions", "delay_ms"): "physics", ("delay_observations", "delay_ms"): "control"}
#: display units of common params (the report's axis labels)
UNITS = {"force": "N", "delay_ms": "ms", "mass": "kg", "fraction": "of mass", "sliding": "×", "torsional": "×",
         "rolling": "×", "scale": "×", "angle": "°", "amplitude": "m", "std": "", "interval": "s", "duration": "s"}


@dataclasses.dataclass(frozen=True)
class Axis:
    name: str
    kind: str
    param: str
    index: int  # into case.perturbations
    low: float
    high: float
    nominal: float
    envelope: tuple[float, float] | None
    unit: str
    step: float | None = None  # values snap to low + k * step... on the clock grid (0 + k * step)

    def to_dict(self) -> dict:
        return {"name": self.name, "low": self.low, "high": self.high, "nominal": self.nominal,
                "envelope": list(self.envelope) if self.envelope is not None else None, "unit": self.unit,
                "step": self.step}


@dataclasses.dataclass(frozen=True)
class Space:
    axes: tuple[Axis, ...]
    budget: int
    target: float
    require: bool
    alpha: float
    levels: int = 3  # covering-design points per envelope axis

    @property
    def d(self) -> int:
        return len(self.axes)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.axes]

    @property
    def lows(self) -> np.ndarray:
        return np.array([a.low for a in self.axes], dtype=float)

    @property
    def highs(self) -> np.ndarray:
        return np.array([a.high for a in self.axes], dtype=float)

    def snap(self, X: np.ndarray) -> np.ndarray:
        """Axis values on each axis' clock grid (whole physics steps of a delay), inside the box."""
        X = np.array(X, dtype=float, ndmin=2)
        for j, axis in enumerate(self.axes):
            if axis.step:
                X[:, j] = np.round(X[:, j] / axis.step) * axis.step
                # round to the grid, then back inside the box on the grid
                lo, hi = math.ceil(axis.low / axis.step - 1e-9), math.floor(axis.high / axis.step + 1e-9)
                X[:, j] = np.clip(X[:, j], lo * axis.step, hi * axis.step)
                X[:, j] = np.round(X[:, j] / axis.step) * axis.step
        return X

    def to_units(self, U: np.ndarray) -> np.ndarray:
        """(n, d) unit-cube points -> axis units, snapped (see :meth:`snap`)."""
        U = np.array(U, dtype=float, ndmin=2)
        return self.snap(self.lows + U * (self.highs - self.lows))

    def to_unit(self, X: np.ndarray) -> np.ndarray:
        X = np.array(X, dtype=float, ndmin=2)
        return (X - self.lows) / (self.highs - self.lows)

    @property
    def nominal(self) -> np.ndarray:
        return np.array([a.nominal for a in self.axes], dtype=float)

    @property
    def nominal_unit(self) -> np.ndarray:
        return self.to_unit(self.nominal[None])[0]

    @property
    def envelope_box(self) -> np.ndarray:
        """(d, 2) in axis units: the envelope, nominal..nominal for an axis not in it."""
        return np.array([a.envelope if a.envelope is not None else (a.nominal, a.nominal) for a in self.axes], dtype=float)

    @property
    def envelope_unit(self) -> np.ndarray:
        box = self.envelope_box
        return np.stack([self.to_unit(box[:, 0][None])[0], self.to_unit(box[:, 1][None])[0]], axis=1)

    def inside_envelope(self, X: np.ndarray) -> np.ndarray:
        """Rows inside the envelope, every axis not in it at nominal (bool per row)."""
        X = np.array(X, dtype=float, ndmin=2)
        box = self.envelope_box
        tol = 1e-9 * np.maximum(1.0, np.abs(box))
        return np.all((X >= box[:, 0] - tol[:, 0]) & (X <= box[:, 1] + tol[:, 1]), axis=1)

    def params(self, x) -> dict[str, float]:
        """One row's values by axis name (plain floats, for JSON and replay)."""
        return {a.name: float(v) for a, v in zip(self.axes, np.asarray(x, dtype=float))}

    def row_params(self, case, x) -> dict[int, dict]:
        """Perturbation index -> that perturbation's params with this row's values written in."""
        return written(case, [(a.index, a.param, v) for a, v in zip(self.axes, np.asarray(x, dtype=float))])

    def header(self) -> dict:
        return {"target": self.target, "alpha": self.alpha, "axes": [a.to_dict() for a in self.axes]}


def written(case, values) -> dict[int, dict]:
    """``values``: (perturbation index, param, value) triples. Perturbation index -> a copy of
    that perturbation's params in ``case`` with the values written in (a search row's world)."""
    out: dict[int, dict] = {}
    for index, param, value in values:
        out.setdefault(index, dict(case.perturbations[index]["params"]))[param] = float(value)
    return out


def written_row(case, row: dict) -> dict[int, dict]:
    """:func:`written` for a row named by axis (``{"kind.param": value}``, each kind one of the
    case's perturbations, each value a number: a search row, a replay's ``--params``).
    ValueError naming the first axis that is not."""
    values = []
    for name, value in row.items():
        kind, _, param = name.partition(".")
        found = [i for i, p in enumerate(case.perturbations) if p["kind"] == kind]
        if len(found) != 1 or not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InputError(f"{name!r}={value!r} is not a number for one perturbation of case {case.id!r} "
                             f"(its kinds: {', '.join(p['kind'] for p in case.perturbations) or 'none'})")
        values.append((found[0], param, value))
    return written(case, values)


def axis_problem(name: str, spec, registries) -> str | None:
    """Why ``name`` cannot be a search axis of the scenario ``spec``, or None."""

    kind, _, param = name.partition(".")
    found = [i for i, e in enumerate(spec.perturbations) if e.kind == kind]
    if len(found) != 1:
        listed = [e.kind for e in spec.perturbations]
        if not found:
            return (f"no perturbation of kind {kind!r} is listed under perturbations"
                    f"{did_you_mean(kind, listed) if listed else ''}; list it there (its value is the nominal)")
        return f"{len(found)} perturbations have kind {kind!r}; a search axis must target exactly one"
    if kind not in registries.perturbations:
        return None  # reported where the kind is listed
    cls = registries.perturbations.get(kind)
    fields = cls.Params.model_fields
    if param not in fields:
        return f"perturbation {kind!r} has no param {param!r}{did_you_mean(param, list(fields))}"
    if cls.stage == "spec" or cls.control_hz is not _base_control_hz():
        return (f"perturbation {kind!r} changes the model's structure or the control rate once per case, so its "
                "params cannot vary per episode; sweep it with matrix: instead")
    if getattr(cls, "per_step_params", False):
        return (f"perturbation {kind!r} reads its params at every control step, so a search cannot give each "
                "episode its own value; sweep it with matrix: instead")
    value = spec.perturbations[found[0]].params.get(param, fields[param].default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return (f"the nominal value of {kind}.{param} under perturbations is {value!r}; a searched param must be "
                "a single number there (not a [low, high] range: the search itself varies it)")
    return None


def _base_control_hz():
    return Perturbation.control_hz


def nominal_of(name: str, spec, registries) -> float:
    kind, _, param = name.partition(".")
    entry = next(e for e in spec.perturbations if e.kind == kind)
    default = registries.perturbations.get(kind).Params.model_fields[param].default
    return float(entry.params.get(param, default))


def from_case(case, perturbations, physics_dt: float | None = None, control_dt: float | None = None) -> Space:
    """The case's search space (its scenario was checked by the loader); ``perturbations``: the
    case's instances (their params hold the nominal, defaults filled in). ``physics_dt`` and
    ``control_dt`` (seconds) give the grid of a snapped param; without them nothing snaps."""
    search = case.search
    axes = []
    for name, (low, high) in search["space"].items():
        kind, _, param = name.partition(".")
        index = next(i for i, p in enumerate(case.perturbations) if p["kind"] == kind)
        nominal = getattr(perturbations[index].params, param)  # the loader checked it is a number
        period = {"physics": physics_dt, "control": control_dt}.get(SNAPPED.get((kind, param)))
        envelope = search.get("envelope", {}).get(name)
        axes.append(Axis(name, kind, param, index, float(low), float(high), float(nominal),
                         tuple(map(float, envelope)) if envelope is not None else None, UNITS.get(param, ""),
                         round(period * 1000, 12) if period else None))
    return Space(tuple(axes), int(search["budget"]), float(case.thresholds["min_success_rate"]),
                 search.get("require") == "holds_inside_envelope", float(case.alpha), int(search.get("levels", 3)))
