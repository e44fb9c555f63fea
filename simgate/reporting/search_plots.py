"""The pictures of a search case (the ``search`` dict of its record, docs/search.md): the failure
boundary per axis, a 2-D map of the two most sensitive axes with the fitted risk model's
boundary, the Sobol sensitivity bars, and the envelope's certificate. Each ``*_figure`` function
builds a matplotlib Figure (tests read it); the function without the suffix returns PNG bytes, or
None when the dict lacks what the picture needs. The dict comes from JSON written by another
process: every field may be missing or null, and a picture leaves out what is not there rather
than fail the report.

The text functions (:func:`caption`, :func:`summary_lines`) need no matplotlib: Allure's text
summary and the promotion overview use them too."""

from __future__ import annotations

import math
import textwrap

import numpy as np

from simgate.distributions import beta_ppf
from simgate.reporting.plots import DPI, WIDTH, _figure, png
from simgate.search.risk import RiskModel

OK, BAD, UNSURE = "#2e8b57", "#c0392b", "#e67e22"
ENVELOPE = "#2e86c1"
CROSSING = "#8e44ad"


# -- reading the dict ------------------------------------------------------------------------------
def axes_of(search: dict) -> list[dict]:
    return [a for a in (search.get("axes") or []) if isinstance(a, dict) and a.get("name")]


def _num(value) -> float | None:
    """A finite float or None (null, NaN written by mistake, a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value, unit: str = "") -> str:
    """A level as a reader wants it: three significant digits, the unit after a space."""
    v = _num(value)
    if v is None:
        return "?"
    text = f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return f"{text} {unit}" if unit else text


def label(axis: dict) -> str:
    unit = axis.get("unit") or ""
    return f"{axis['name']} ({unit})" if unit else axis["name"]


def confidence(search: dict, entry: dict | None = None) -> float:
    """The boundary's interval level: the entry's own if it says, else 95 %."""
    level = _num((entry or {}).get("confidence"))
    return level if level is not None and 0 < level < 1 else 0.95


def _pct(level: float) -> str:
    return f"{level * 100:.0f} %" if abs(level * 100 - round(level * 100)) < 1e-9 else f"{level * 100:g} %"


def caption(axis: dict, entry: dict | None, target, level: float = 0.95, others: bool = False) -> str:
    """One sentence per axis: 'success ≥ 0.75 holds up to 13.2 N (95 % interval 12.6–13.9 N)'.
    The direction comes from where nominal lies: a boundary above nominal is 'up to', below it
    'down to' (low friction fails, so friction's boundary is a floor). ``others``: the search
    has other axes, which the sentence then says were at nominal. A crossing also says whether it
    held up on fresh seeds (:func:`confirmation_words`)."""
    unit = axis.get("unit") or ""
    t = _num(target)
    need = f"success ≥ {t:g}" if t is not None else "success ≥ target"
    span = f"{fmt(axis.get('low'))}–{fmt(axis.get('high'), unit)}"
    if not entry:
        return "no boundary estimated"
    status = entry.get("status")
    if status == "holds_everywhere":
        return f"{need} holds over the whole range, {span} (no crossing)"
    if status == "fails_everywhere":
        return f"{need} fails over the whole range, {span} (never reaches the target)"
    estimate = _num(entry.get("estimate"))
    if estimate is None:
        return f"boundary not estimated ({status or 'no status'})"
    nominal = _num(axis.get("nominal"))
    way = "down to" if nominal is not None and nominal > estimate else "up to"
    low, high = _num(entry.get("low")), _num(entry.get("high"))
    if low is None and high is None:
        interval = "interval not available"
    elif low is not None and high is not None:
        interval = f"{_pct(level)} interval {fmt(low)}–{fmt(high, unit)}"
    else:  # the interval leaves the range searched on one side
        lo = fmt(low, unit) if low is not None else f"below {fmt(axis.get('low'), unit)}"
        hi = fmt(high, unit) if high is not None else f"beyond {fmt(axis.get('high'), unit)}"
        interval = f"{_pct(level)} interval {lo} to {hi}"
    # the fit is along this axis with every other at nominal: without saying so, "holds up to 10.3 N"
    # reads as a claim about the envelope, whose corners (other axes moved) may measure less
    alone = " with the other axes at nominal" if others else ""
    return f"{need} holds {way} {fmt(estimate, unit)}{alone} ({interval}); {confirmation_words(axis, entry, target)}"


def confirmation_words(axis: dict, entry: dict, target) -> str:
    """Whether a crossing boundary held up on fresh seeds (simgate.search.confirm): 'confirmed on
    60 fresh episodes: ≥ 0.75 at 9.9 N and below it at 12.6 N'. Only the status "confirmed" reads
    as confirmed; a dict from before the confirmation stage says it was not."""
    unit = axis.get("unit") or ""
    record = entry.get("confirmation")
    if not isinstance(record, dict) or not record.get("status"):
        return "not confirmed on fresh seeds"
    t = _num(target)
    need = f"{t:g}" if t is not None else "the target"
    safe, failing = record.get("safe") or {}, record.get("failing") or {}
    episodes = int(_num(record.get("episodes")) or 0)

    def counts(side: dict) -> str:
        k, n = _num(side.get("successes")), _num(side.get("trials"))
        return f"{int(k)}/{int(n)} at {fmt(side.get('x'), unit)}" if k is not None and n else f"no episodes at {fmt(side.get('x'), unit)}"

    status = record["status"]
    if status == "confirmed":
        return (f"confirmed on {episodes} fresh episodes: ≥ {need} at {fmt(safe.get('x'), unit)} "
                f"and below it at {fmt(failing.get('x'), unit)}")
    if status == "contradicted":
        if safe.get("status") == "contradicted":
            return f"contradicted on {episodes} fresh episodes: {counts(safe)}, below {need} where it should hold"
        return f"contradicted on {episodes} fresh episodes: {counts(failing)}, at least {need} where it should not"
    if status != "unconfirmed":  # not applicable to a crossing, or a status this reader does not know
        return "not confirmed on fresh seeds"
    if episodes == 0:
        return "not confirmed: no episodes were left for it in the budget"
    return f"not confirmed on {episodes} fresh episodes ({counts(safe)}, {counts(failing)}): the budget ran out first"


def most_sensitive(search: dict, k: int = 2) -> list[int]:
    """Indices of the ``k`` axes with the largest total-order Sobol index of success (axes without
    an index come last, in their order); the first ``k`` axes when there is no sensitivity."""
    axes = axes_of(search)
    total = (((search.get("sensitivity") or {}).get("success") or {}).get("total") or {})

    def score(i):
        est = _triple(total.get(axes[i]["name"]))[0]
        return -(est if est is not None else -math.inf)

    return sorted(range(len(axes)), key=lambda i: (score(i), i))[:k]


def _triple(value) -> tuple[float | None, float | None, float | None]:
    """[estimate, low, high] (a Sobol index with its interval), any of them possibly missing."""
    if isinstance(value, (list, tuple)):
        values = [_num(v) for v in list(value)[:3]]
        return tuple(values + [None] * (3 - len(values)))  # type: ignore[return-value]
    return _num(value), None, None


def exact_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) interval of a success rate."""

    if n <= 0:
        return 0.0, 1.0
    a = (1 - level) / 2
    return (0.0 if k == 0 else float(beta_ppf(a, k, n - k + 1))), (1.0 if k == n else float(beta_ppf(1 - a, k + 1, n - k)))


def risk_model(search: dict):
    """The fitted risk model (simgate.search.risk.RiskModel.from_dict), or None."""
    model = ((search.get("boundary") or {}).get("joint") or {}).get("model")
    if not model:
        return None
    try:
        return RiskModel.from_dict(model)
    except Exception:  # an old or foreign dict: the map shows the points without the fitted boundary
        return None


def _to_unit(axis: dict, x):
    low, high = _num(axis.get("low")), _num(axis.get("high"))
    if low is None or high is None or high <= low:
        return np.full_like(np.asarray(x, dtype=float), 0.5)
    return (np.asarray(x, dtype=float) - low) / (high - low)


def nominal_unit(axes: list[dict]) -> np.ndarray:
    return np.array([float(_to_unit(a, _num(a.get("nominal")) if _num(a.get("nominal")) is not None
                                     else ((_num(a.get("low")) or 0.0) + (_num(a.get("high")) or 1.0)) / 2))
                     for a in axes])


def _predict(model, U: np.ndarray) -> np.ndarray | None:
    try:
        p = np.asarray(model.predict(U), dtype=float).reshape(-1)
    except Exception:
        return None
    return p if p.shape[0] == U.shape[0] else None


# -- (a) the boundary per axis ---------------------------------------------------------------------
def boundary_figure(search: dict):
    """One panel per axis: success rate per level with its exact interval, the target, the
    estimated crossing with its interval, the envelope and nominal; the caption above each panel.
    With a fitted risk model, its slice along the axis (others at nominal) as a thin line."""
    axes = axes_of(search)
    per_axis = (search.get("boundary") or {}).get("per_axis") or {}
    shown = [a for a in axes if per_axis.get(a["name"])]
    if not shown:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = _num(search.get("target"))
    columns = 2 if len(shown) > 1 else 1
    rows = math.ceil(len(shown) / columns)
    fig, grid = plt.subplots(rows, columns, figsize=(WIDTH * (1.45 if columns == 2 else 1), 0.4 + 3.1 * rows), dpi=DPI,
                             layout="constrained", squeeze=False)
    model = risk_model(search)
    nominal = nominal_unit(axes)
    for n, axis in enumerate(shown):
        ax = grid[n // columns][n % columns]
        entry = per_axis[axis["name"]]
        level = confidence(search, entry)
        _boundary_panel(ax, axis, entry, target, level, model, nominal, axes.index(axis))
        ax.set_title(textwrap.fill(caption(axis, entry, target, level, len(axes) > 1), 70 if columns == 2 else 78), fontsize=9.5,
                     color=_status_colour(entry.get("status")), loc="left")
    for n in range(len(shown), rows * columns):
        grid[n // columns][n % columns].set_visible(False)
    handles, labels = [], []
    for ax in grid.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8)
    fig.suptitle("Failure boundary per axis (the other axes at nominal): where success crosses the target",
                 fontsize=11)
    return fig


def _status_colour(status) -> str:
    return {"holds_everywhere": OK, "fails_everywhere": BAD}.get(status, "#222222")


def _boundary_panel(ax, axis, entry, target, level, model, nominal, d_index) -> None:
    low, high = _num(axis.get("low")), _num(axis.get("high"))
    envelope = axis.get("envelope") or None
    if isinstance(envelope, (list, tuple)) and len(envelope) == 2 and None not in (_num(envelope[0]), _num(envelope[1])):
        ax.axvspan(float(envelope[0]), float(envelope[1]), color=ENVELOPE, alpha=0.10, label="operating envelope")
    estimate = _num(entry.get("estimate"))
    if entry.get("status") == "crosses" and estimate is not None:
        lo, hi = _num(entry.get("low")), _num(entry.get("high"))
        if lo is not None or hi is not None:
            ax.axvspan(lo if lo is not None else (low if low is not None else estimate),
                       hi if hi is not None else (high if high is not None else estimate),
                       color=CROSSING, alpha=0.18, label=f"crossing, {_pct(level)} interval")
        ax.axvline(estimate, color=CROSSING, linewidth=1.8, label="crossing (estimate)")
    if target is not None:
        ax.axhline(target, color=BAD, linestyle="--", linewidth=1.4, label=f"target: success ≥ {target:g}")
    x_nom = _num(axis.get("nominal"))
    if x_nom is not None:
        ax.axvline(x_nom, color="#555555", linestyle=":", linewidth=1.4, label="nominal")
    if model is not None and low is not None and high is not None and high > low:
        grid = np.linspace(0.0, 1.0, 121)
        U = np.tile(nominal, (grid.size, 1))
        U[:, d_index] = grid
        p = _predict(model, U)
        if p is not None:
            ax.plot(low + grid * (high - low), p, color="#7f8c8d", linewidth=1.0,
                    label="risk model (others at nominal)")
    levels = [_num(v) for v in entry.get("levels") or []]
    succ = list(entry.get("successes") or [])
    trials = list(entry.get("trials") or [])
    points = [(x, int(k), int(t)) for x, k, t in zip(levels, succ, trials)
              if x is not None and _num(k) is not None and _num(t) is not None and t > 0]
    if points:
        x = np.array([p[0] for p in points])
        rate = np.array([p[1] / p[2] for p in points])
        bounds = np.array([exact_interval(p[1], p[2], level) for p in points])
        # colour: the observed rate against the target; the bar says how sure (few episodes per
        # level make wide bars: the crossing's interval pools them through the fitted curve)
        colour = [UNSURE if target is None else OK if r >= target else BAD for r in rate]
        ax.errorbar(x, rate, yerr=[rate - bounds[:, 0], bounds[:, 1] - rate], fmt="none", ecolor="#34495e",
                    capsize=3, linewidth=1, alpha=0.8)
        ax.scatter(x, rate, c=colour, s=16 + 40 * np.sqrt([p[2] for p in points]) / np.sqrt(max(p[2] for p in points)),
                   zorder=3, edgecolors="#2c3e50", linewidths=0.5)
        ax.scatter([], [], c="#bdc3c7", edgecolors="#2c3e50", s=30,
                   label=f"success rate per level (green ≥ target, red below), exact {_pct(level)} interval; size: episodes")
    _confirmation_points(ax, entry.get("confirmation"), level)
    ax.set_ylim(-0.03, 1.03)
    if low is not None and high is not None and high > low:
        pad = 0.02 * (high - low)  # points and nominal at the ends of the range stay visible
        ax.set_xlim(low - pad, high + pad)
    ax.set_xlabel(label(axis))
    ax.set_ylabel("success rate")
    ax.grid(alpha=0.3)


def boundary(search: dict) -> bytes | None:
    fig = boundary_figure(search)
    return None if fig is None else png(fig)


def _confirmation_points(ax, record, level) -> None:
    """The confirmation's fresh episodes at its two levels (simgate.search.confirm), drawn apart
    from the levels the boundary was fitted on: they are a check of it, not part of it."""
    if not isinstance(record, dict):
        return
    points = []
    for side in ("safe", "failing"):
        found = record.get(side) or {}
        x, k, n = _num(found.get("x")), _num(found.get("successes")), _num(found.get("trials"))
        if x is not None and k is not None and n:
            points.append((x, int(k), int(n)))
    if not points:
        return
    x = np.array([p[0] for p in points])
    rate = np.array([p[1] / p[2] for p in points])
    bounds = np.array([exact_interval(k, n, level) for _, k, n in points])
    ax.errorbar(x, rate, yerr=[rate - bounds[:, 0], bounds[:, 1] - rate], fmt="D", mfc="white", mec=CROSSING,
                ecolor=CROSSING, capsize=3, linewidth=1, zorder=4,
                label=f"fresh seeds (the confirmation: see the title), exact {_pct(level)} interval")


# -- (b) the 2-D map -------------------------------------------------------------------------------
def map_figure(search: dict):
    """The two axes with the largest total-order index of success: the sampled points (success,
    failure; projected, the other axes vary), the fitted model's p = target contour with the other
    axes at nominal, the envelope and the counterexamples."""
    axes = axes_of(search)
    if len(axes) < 2:
        return None
    i, j = most_sensitive(search, 2)
    ai, aj = axes[i], axes[j]
    joint = (search.get("boundary") or {}).get("joint") or {}
    target = _num(search.get("target"))
    model = risk_model(search)
    points = [p for p in (joint.get("points") or []) if isinstance(p, (list, tuple)) and len(p) == len(axes)]
    success = list(joint.get("success") or [])[: len(points)]
    points = points[: len(success)]
    counter = counterexamples_of(search)
    if not points and model is None and not counter:
        return None

    fig, ax = _figure(5.6, WIDTH * 0.95)
    lo_i, hi_i, lo_j, hi_j = (_num(ai.get("low")), _num(ai.get("high")), _num(aj.get("low")), _num(aj.get("high")))
    ranged = None not in (lo_i, hi_i, lo_j, hi_j) and hi_i > lo_i and hi_j > lo_j
    if model is not None and ranged:
        g = np.linspace(0.0, 1.0, 101)
        gi, gj = np.meshgrid(g, g)
        U = np.tile(nominal_unit(axes), (gi.size, 1))
        U[:, i], U[:, j] = gi.ravel(), gj.ravel()
        p = _predict(model, U)
        if p is not None:
            X, Y, P = lo_i + gi * (hi_i - lo_i), lo_j + gj * (hi_j - lo_j), p.reshape(gi.shape)
            shade = ax.contourf(X, Y, P, levels=np.linspace(0, 1, 11), cmap="RdYlGn", alpha=0.28, vmin=0, vmax=1)
            fig.colorbar(shade, ax=ax, label="risk model: success probability (others at nominal)", shrink=0.85)
            if target is not None and P.min() < target < P.max():
                ax.contour(X, Y, P, levels=[target], colors=CROSSING, linewidths=2.2)
                ax.plot([], [], color=CROSSING, linewidth=2.2, label=f"fitted boundary p = {target:g}")
            elif target is not None:  # say so, rather than leave the reader looking for the line
                ax.plot([], [], color="none", label=f"p = {target:g} {'nowhere reached' if P.max() < target else 'everywhere'}"
                                                    " on this slice")
    if points:
        P2 = np.array(points, dtype=float)
        ok = np.array([bool(s) for s in success])
        ax.scatter(P2[ok, i], P2[ok, j], s=14, c=OK, alpha=0.7, edgecolors="none",
                   label=f"sampled: success ({int(ok.sum())})")
        ax.scatter(P2[~ok, i], P2[~ok, j], s=14, c=BAD, marker="x", alpha=0.7, linewidths=0.9,
                   label=f"sampled: failure ({int((~ok).sum())})")
    env_i, env_j = _box(ai), _box(aj)
    if env_i or env_j:
        from matplotlib.patches import Rectangle

        (x0, x1), (y0, y1) = env_i or (_nominal_pair(ai)), env_j or (_nominal_pair(aj))
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=ENVELOPE, linewidth=2.2,
                               label="operating envelope"))
    nom_i, nom_j = _num(ai.get("nominal")), _num(aj.get("nominal"))
    if nom_i is not None and nom_j is not None:
        ax.scatter([nom_i], [nom_j], marker="D", s=50, c="white", edgecolors="#2c3e50", zorder=4, label="nominal")
    certified = (search.get("certificate") or {}).get("status") == "PASS"  # failing episodes there are examples
    for n, c in enumerate(counter):
        params = c.get("params") or {}
        x = _num(params.get(ai["name"], ai.get("nominal")))
        y = _num(params.get(aj["name"], aj.get("nominal")))
        if x is None or y is None:
            continue
        ax.scatter([x], [y], marker="*", s=260, c="#f1c40f", edgecolors="#2c3e50", linewidths=1.0, zorder=5,
                   label=(("example (shrunk; the certificate passes here)" if certified else "counterexample (shrunk)")
                          if n == 0 else None))
        ax.annotate(f"#{n + 1} ep {c.get('index', '?')}", (x, y), textcoords="offset points", xytext=(7, 5), fontsize=8)
    if ranged:  # a little margin: nominal and the envelope often sit on the range's edge
        ax.set_xlim(lo_i - 0.02 * (hi_i - lo_i), hi_i + 0.02 * (hi_i - lo_i))
        ax.set_ylim(lo_j - 0.02 * (hi_j - lo_j), hi_j + 0.02 * (hi_j - lo_j))
    ax.set_xlabel(label(ai))
    ax.set_ylabel(label(aj))
    auc = _num(search.get("auc"))
    held = search.get("auc_points")
    quality = (f"risk model AUC {auc:.2f} on {held} held-out uniform points" if auc is not None and held
               else f"risk model AUC {auc:.2f}" if auc is not None else "risk model AUC not computed")
    quality += " (how well the map predicts held-out episodes, not how robust the policy is)" if auc is not None else ""
    # wrapped: one long line is cut at the figure's edges (the AUC went unread)
    ax.set_title("The two most sensitive axes (total-order index of success)\n" + textwrap.fill(
        f"{quality}; points: every joint sample, the other axes varying", 90), fontsize=9.5)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    return fig


def _box(axis: dict) -> tuple[float, float] | None:
    env = axis.get("envelope")
    if isinstance(env, (list, tuple)) and len(env) == 2 and None not in (_num(env[0]), _num(env[1])):
        return float(env[0]), float(env[1])
    return None


def _nominal_pair(axis: dict) -> tuple[float, float]:
    v = _num(axis.get("nominal")) or 0.0
    return v, v


def search_map(search: dict) -> bytes | None:
    fig = map_figure(search)
    return None if fig is None else png(fig)


# -- (c) sensitivity ------------------------------------------------------------------------------
def sensitivity_figure(search: dict):
    """First- and total-order Sobol indices per axis with their intervals, for success and for
    mean torque (one panel each, the panels present in the dict)."""
    sens = search.get("sensitivity") or {}
    names = [a["name"] for a in axes_of(search)]
    panels = [(what, sens.get(what)) for what in ("success", "torque") if isinstance(sens.get(what), dict)
              and any(sens[what].get(order) for order in ("first", "total"))]
    omitted = [what for what, indices in panels if _too_few(indices)]
    panels = [(what, indices) for what, indices in panels if what not in omitted]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for _, indices in panels:  # axes only the indices name (a dict without "axes")
        for order in ("first", "total"):
            names += [n for n in (indices.get(order) or {}) if n not in names]
    fig, grid = plt.subplots(1, len(panels), figsize=(WIDTH * (1.3 if len(panels) == 2 else 1), 1.6 + 0.55 * len(names)),
                             dpi=DPI, layout="constrained", squeeze=False, sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, (what, indices) in zip(grid[0], panels):
        for k, (order, colour, shift) in enumerate((("first", "#5dade2", 0.18), ("total", "#1a5276", -0.18))):
            values = [_triple((indices.get(order) or {}).get(n)) for n in names]
            est = np.array([v[0] if v[0] is not None else np.nan for v in values])
            lo = np.array([v[1] if v[1] is not None else np.nan for v in values])
            hi = np.array([v[2] if v[2] is not None else np.nan for v in values])
            ax.barh(y + shift, np.nan_to_num(est), height=0.34, color=colour, label=f"{order}-order")
            has = ~np.isnan(lo) & ~np.isnan(hi) & ~np.isnan(est)
            if has.any():
                ax.errorbar(est[has], (y + shift)[has], xerr=[np.maximum(est[has] - lo[has], 0),
                                                            np.maximum(hi[has] - est[has], 0)],
                            fmt="none", ecolor="#17202a", capsize=3, linewidth=1)
            for yy, e in zip(y + shift, est):
                if np.isnan(e):
                    ax.text(0.01, yy, "n/a", va="center", fontsize=7, color="#7f8c8d")
        ax.axvline(0, color="#555555", linewidth=0.8)
        # an index is a share of the variance: estimates and bars far outside [0, 1] are noise
        # of a small design, shown clipped (the numbers are in search.json)
        low_x, high_x = ax.get_xlim()
        clipped = low_x < -0.2 or high_x > 1.2
        ax.set_xlim(max(min(-0.05, low_x), -0.2), min(max(1.0, high_x), 1.2))
        base = indices.get("n")
        source = ("the risk model's p(success)" if indices.get("method") == "risk model"
                  else ("success" if what == "success" else "mean |torque|") + " over episodes")
        ax.set_title(f"Sobol indices of {source}" + (f" (n = {base} base points)" if base else ""), fontsize=10)
        ax.set_xlabel("share of the variance (bars: interval" + ("; clipped to −0.2…1.2)" if clipped else ")"))
        ax.grid(axis="x", alpha=0.3)
    grid[0][0].set_yticks(y, names)
    grid[0][0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Sensitivity: first order = the axis alone, total order = with its interactions"
                 + "".join(f"\n({what}: not shown, its indices come from too few base points to be more than noise)"
                           for what in omitted), fontsize=11)
    return fig


#: fewest base points of an episode-based Sobol estimate worth a bar (its standard error is
#: about 1/sqrt(n) of the variance: at 16 base points, ±0.25, the size of the indices themselves)
MIN_SOBOL_BASE = 64


def _too_few(indices: dict) -> bool:
    """An episode-based estimate from fewer than MIN_SOBOL_BASE base points (the risk model's are
    computed on as many model points as wanted)."""
    n = indices.get("n")
    return indices.get("method") != "risk model" and isinstance(n, (int, float)) and n < MIN_SOBOL_BASE


def sensitivity(search: dict) -> bytes | None:
    fig = sensitivity_figure(search)
    return None if fig is None else png(fig)


# -- (d) the certificate --------------------------------------------------------------------------
def certificate_figure(search: dict):
    """Per covering design point of the envelope: its exact lower and upper bounds at the
    family-wise level against the target. PASS: every lower bound at or above the target."""
    cert = search.get("certificate") or {}
    points = [p for p in (cert.get("points") or []) if isinstance(p, dict)]
    if not points:
        return None

    target = _num(search.get("target"))
    status = cert.get("status") or "?"
    axes = {a["name"]: a for a in axes_of(search)}
    labelled = len(points) <= 24  # beyond that the ticks would overlap: numbered instead
    fig, ax = _figure(3.4 + (0.25 * max(1, len(axes)) + 0.3 if labelled else 0.4),
                      max(WIDTH, 2.6 + (1.05 if labelled else 0.12) * len(points)) if len(points) > 6 else WIDTH)
    x = np.arange(len(points))
    lower = np.array([_num(p.get("lower")) if _num(p.get("lower")) is not None else np.nan for p in points])
    upper = np.array([_num(p.get("upper")) if _num(p.get("upper")) is not None else np.nan for p in points])
    rate = np.array([p["successes"] / p["trials"] if _num(p.get("successes")) is not None and _num(p.get("trials"))
                     else np.nan for p in points])
    colour = [OK if target is not None and lo >= target else BAD if target is not None and up < target else UNSURE
              for lo, up in zip(lower, upper)]
    has = ~np.isnan(lower) & ~np.isnan(upper)
    if has.any():  # an empty LineCollection in the legend breaks matplotlib
        ax.vlines(x[has], lower[has], upper[has], colors=np.array(colour, dtype=object)[has].tolist(), linewidth=3,
                  alpha=0.6, label="lower to upper bound")
    ax.scatter(x, lower, marker="_", s=220, c=colour, linewidths=2.5, zorder=3, label="lower bound (family-wise)")
    ax.scatter(x, rate, marker="o", s=16, c="#2c3e50", zorder=4, label="observed success rate")
    if target is not None:
        ax.axhline(target, color=BAD, linestyle="--", linewidth=1.4, label=f"target {target:g}")
    # under each point the params that vary over the design (the others sit at nominal throughout)
    varied = [k for k in dict.fromkeys(k for p in points for k in (p.get("params") or {}))
              if len({repr((p.get("params") or {}).get(k)) for p in points}) > 1]
    if labelled:
        ticks = ["\n".join(f"{_short(k)}={fmt((p.get('params') or {}).get(k), (axes.get(k) or {}).get('unit', ''))}"
                           for k in varied)
                 + (f"\n{p.get('successes')}/{p.get('trials')}" if p.get("trials") is not None else "") for p in points]
        ax.set_xticks(x, ticks, fontsize=7)
    else:
        ax.set_xlabel(f"covering design point (1–{len(points)})")
    ax.set_ylim(max(0.0, min(np.nanmin(lower) if has.any() else 0.0, target or 1.0) - 0.08), 1.02)
    ax.set_ylabel("success rate")
    alpha, level = _num(cert.get("alpha") if cert.get("alpha") is not None else search.get("alpha")), _num(cert.get("level"))
    how = (f"each point at level {level:.2g}" if level is not None else "") + (
        f", family-wise α = {alpha:g}" if alpha is not None else "")
    worded = {"PASS": "every point's lower bound is at or above the target",
              "FAIL": "some point's upper bound is below the target",
              "INCONCLUSIVE": inconclusive_words(points, target)}.get(status, "")

    ax.set_title(textwrap.fill(f"Envelope certificate: {status}" + (f" — {worded}" if worded else ""), 90)
                 + f"\n{len(points)} covering design points" + (f" ({how.lstrip(', ')})" if how else ""), fontsize=10,
                 color={"PASS": OK, "FAIL": BAD, "INCONCLUSIVE": UNSURE}.get(status, "#222222"))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def inconclusive_words(points: list, target) -> str:
    """Why a certificate is INCONCLUSIVE, from what it measured: a point measured below the target
    (more episodes there would sooner show FAIL than PASS), or every point above it but some
    lower bound short (more episodes could show PASS)."""
    t = _num(target)
    below = [p for p in points if t is not None and p.get("trials") and (p.get("successes") or 0) / p["trials"] < t]
    if below:
        worst = min(below, key=lambda p: (p.get("successes") or 0) / p["trials"])
        return (f"{len(below)} point(s) measured below the target (worst {worst.get('successes')}/{worst.get('trials')}), "
                "not significantly at the family-wise level: neither PASS nor FAIL shown")
    return "every point measured at or above the target, but not every lower bound reaches it (more episodes could show PASS)"


def _short(name: str) -> str:
    """'apply_pushes.force' → 'force': the parameter is enough under a tick."""
    return name.rsplit(".", 1)[-1]


def certificate(search: dict) -> bytes | None:
    fig = certificate_figure(search)
    return None if fig is None else png(fig)


def pictures(search: dict) -> list[tuple[str, bytes]]:
    """Every picture the dict supports, named as Allure shows them; [] without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    drawn = [("search: failure boundary per axis", boundary), ("search: 2-D map of the most sensitive axes", search_map),
             ("search: sensitivity (Sobol indices)", sensitivity), ("search: envelope certificate", certificate)]
    out = []
    for name, draw in drawn:
        body = draw(search)
        if body is not None:
            out.append((name, body))
    return out


# -- words ---------------------------------------------------------------------------------------
def counterexample_title(c: dict, axes: list[dict]) -> str:
    """'apply_pushes.force=9.1 N, delay_actions.delay_ms=12 ms, episode 17': the params away from
    nominal (a shrunk counterexample sits at nominal on most axes; all of them are its parameters)."""
    units = {a["name"]: a.get("unit") or "" for a in axes}
    nominal = {a["name"]: _num(a.get("nominal")) for a in axes}
    params = c.get("params") or {}
    moved = {k: v for k, v in params.items() if nominal.get(k) is None or _num(v) is None or not math.isclose(
        float(v), nominal[k], rel_tol=1e-9, abs_tol=1e-12)}
    text = ", ".join(f"{k}={fmt(v, units.get(k, ''))}" for k, v in moved.items())
    if text and len(moved) < len(params):
        text += " (others nominal)"
    index = c.get("index")
    return f"{text or 'nominal'}, episode {'?' if index is None else index}"


def counterexamples_of(search: dict) -> list[dict]:
    """The counterexamples, each (params, episode) once: two shrinks can end on the same row."""
    seen, out = set(), []
    for c in search.get("counterexamples") or []:
        if not isinstance(c, dict):
            continue
        key = (repr(sorted((c.get("params") or {}).items())), c.get("index"))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def summary_lines(search: dict) -> list[str]:
    """The search in a few lines: certificate, boundaries, sensitivity, counterexamples, episodes."""
    axes = axes_of(search)
    target = search.get("target")
    cert = search.get("certificate") or {}
    lines = []
    if cert.get("status"):
        lines.append(f"envelope certificate: {cert['status']}" + (
            f" over {len(cert.get('points') or [])} covering design points" if cert.get("points") else "")
            + (": it speaks for the whole envelope only if success is lowest at those points (monotone along "
               "each axis between them)" if cert.get("status") == "PASS" else ""))
    per_axis = (search.get("boundary") or {}).get("per_axis") or {}
    for axis in axes:
        entry = per_axis.get(axis["name"])
        lines.append(f"{axis['name']}: {caption(axis, entry, target, confidence(search, entry), len(axes) > 1)}")
    auc = _num(search.get("auc"))
    if auc is not None:
        lines.append(f"risk model AUC {auc:.3f}" + (f" on {search['auc_points']} held-out uniform points"
                                                   if search.get("auc_points") else "")
                     + ": how well the fitted map predicts held-out episodes, not how robust the policy is")
    total = (((search.get("sensitivity") or {}).get("success") or {}).get("total") or {})
    if total and axes:
        ranked = [axes[i]["name"] for i in most_sensitive(search, len(axes)) if _triple(total.get(axes[i]["name"]))[0] is not None]
        if ranked:
            lines.append("most sensitive (total-order index of success): " + ", ".join(
                f"{n} {_triple(total[n])[0]:.2f}" for n in ranked))
    counter = counterexamples_of(search)
    if (search.get("certificate") or {}).get("status") == "PASS":  # the certificate holds: failing episodes are examples
        lines.append(f"failing episodes inside the envelope (examples: the certificate passes there): {len(counter)}"
                     if counter else "failing episodes inside the envelope: none found")
    else:
        lines.append(f"counterexamples inside the envelope: {len(counter)}" if counter
                     else "counterexamples inside the envelope: none found")
    for c in counter:
        lines.append(f"  {counterexample_title(c, axes)}: {c.get('mode') or 'failed'}")
    episodes = search.get("episodes") or {}
    if episodes.get("total") is not None:
        parts = ", ".join(f"{k} {v}" for k, v in episodes.items() if k != "total" and v is not None)
        lines.append(f"episodes: {episodes['total']}" + (f" ({parts})" if parts else ""))
    return lines
