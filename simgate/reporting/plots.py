"""The pictures of the report: a case's failure modes, per-joint torque against its limits and its
baseline, time to fall, and (on the controller, across cases) robustness curves and candidate vs
baseline charts. Each chart is built as a matplotlib Figure by a ``*_figure`` function (tests read
its lines and labels) and turned into PNG bytes by the function without the suffix. matplotlib
is imported here only, when a report is wanted (Agg backend: no display on CI machines).

Every chart shows what the verdict used: one-sided (1 − alpha) bounds, not two-sided bands; the
limit a quantity is judged against; both policies where a comparison is judged."""

from __future__ import annotations

import io
import math

import numpy as np

from simgate.distributions import beta_ppf

#: wide enough to read in Allure's attachment pane (≥ 800 px at dpi 110)
WIDTH, DPI = 8.4, 110
COLOURS = {"PASS": "#2e8b57", "FAIL": "#c0392b", "INCONCLUSIVE": "#e67e22", "ERROR": "#8e44ad"}
POLICY_COLOURS = ("#2c3e50", "#2980b9", "#8e44ad", "#16a085", "#d35400")


def _figure(height: float = 4.2, width: float = WIDTH):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, ax


def png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _primary_and_fell(table: dict[str, list]) -> tuple[list, list]:
    modes = list(table.get("failure_mode") or [])
    fall = [t is not None and math.isfinite(t) for t in table.get("time_to_fall", [])]
    return modes, fall


# -- a case -----------------------------------------------------------------------------------------
def failure_modes_figure(modes: dict[str, int], episodes: int, table: dict[str, list] | None = None):
    """Primary mode per failed episode (one each: the first rule that matches), and, hatched, how
    many of them also fell: a robot that fell with its motors saturated counts as saturated."""
    if not modes:
        return None
    fig, ax = _figure(1.6 + 0.45 * len(modes))
    names = list(modes)[::-1]
    counts = [modes[n] for n in names]
    ax.barh(names, counts, color="#c0392b", label="primary failure mode")
    primary, fell = _primary_and_fell(table or {})
    also = [sum(1 for m, f in zip(primary, fell) if m == n and f) if n != "fell" else 0 for n in names]
    if any(also):
        ax.barh(names, also, color="none", edgecolor="white", hatch="//", label="of which also fell")
    for y, (c, a) in enumerate(zip(counts, also)):
        ax.text(c, y, f" {c}" + (f" ({a} also fell)" if a else ""), va="center", fontsize=9)
    ax.set_xlim(0, max(counts) * 1.35 + 1)
    ax.set_xlabel(f"episodes (of {episodes}; {sum(counts)} failed)")
    ax.set_title("primary failure mode per failed episode\n(first matching rule: e.g. saturated before fell)",
                 fontsize=10)
    if any(also):
        ax.legend(loc="lower right", fontsize=8)
    return fig


def failure_modes(modes: dict[str, int], episodes: int, table: dict[str, list] | None = None) -> bytes | None:
    fig = failure_modes_figure(modes, episodes, table)
    return None if fig is None else png(fig)


def joint_vs_baseline(numbers: dict, joint: str, candidate_mean: float, alpha: float = 0.05):
    """(baseline mean, the most the candidate may average, whether this joint is a finding) of
    one joint of a torque_vs_baseline requirement, or None. A finding: the case's own test shows
    the increase above the allowed share (p ≤ alpha, uncorrected: the promotion verdict corrects
    over the candidate's cases). Reads both record layouts: ratio tests (baseline_mean, share,
    p_regression) and difference tests (mean_difference, margin, test)."""
    v = (numbers.get("joints") or {}).get(joint)
    if not v:
        return None
    if "baseline_mean" in v:
        share = v.get("share", numbers.get("share", 0.10))
        return v["baseline_mean"], v["baseline_mean"] * (1 + share), v.get("p_regression", 1.0) <= alpha
    base = candidate_mean - v["mean_difference"]  # the paired difference of the means
    return base, base + v["margin"], v.get("test") == "FAIL"


def torque_figure(table: dict[str, list], requirements: list[dict] | None = None, alpha: float = 0.05):
    """Per joint: the per-episode mean |torque| (box), its mean with the one-sided upper bound the
    verdict used, the absolute limit, and, when the case is compared with a baseline, the
    baseline's mean and the largest increase it allows."""
    joints = [k[len("mean_abs_torque["):-1] for k in table if k.startswith("mean_abs_torque[")]
    if not joints:
        return None
    requirements = requirements or []
    fig, ax = _figure(4.6)
    x = np.arange(1, len(joints) + 1)
    data = [np.asarray(table[f"mean_abs_torque[{j}]"], dtype=float) for j in joints]
    ax.boxplot(data, positions=x, widths=0.45, showfliers=False, patch_artist=True,
               boxprops={"facecolor": "#d6e4f0", "edgecolor": "#2c3e50"}, medianprops={"color": "#2c3e50"})
    absolute = {r["name"].split("[", 1)[-1].rstrip("]"): r for r in requirements if r["kind"] == "mean_torque"}
    if absolute:
        upper = [absolute[j]["numbers"].get("upper", math.nan) if j in absolute else math.nan for j in joints]
        mean = [absolute[j]["numbers"].get("mean", math.nan) if j in absolute else math.nan for j in joints]
        ax.errorbar(x - 0.3, mean, yerr=[np.zeros(len(x)), np.subtract(upper, mean)], fmt="o", color="#2c3e50",
                    capsize=3, markersize=4, label="mean, one-sided upper bound")
        limits = [absolute[j]["numbers"].get("limit", math.nan) if j in absolute else math.nan for j in joints]
        ax.hlines(limits, x - 0.4, x + 0.4, colors="#c0392b", linewidth=2.2, label="limit (mean |τ|)")
    regression = next((r for r in requirements if r["kind"] == "torque_vs_baseline"), None)
    regressed = []
    if regression is not None:
        rows = [joint_vs_baseline(regression["numbers"], j, float(np.mean(column)), alpha)
                for j, column in zip(joints, data)]
        base = [r[0] if r else math.nan for r in rows]
        allowed = [r[1] if r else math.nan for r in rows]
        regressed = [j for j, r in zip(joints, rows) if r and r[2]]
        name = regression["name"].split(" vs ", 1)[-1]
        ax.scatter(x + 0.3, base, marker="D", color="#7f8c8d", zorder=3, label=f"baseline {name}: mean")
        ax.hlines(allowed, x + 0.05, x + 0.45, colors="#e67e22", linestyles="--", linewidth=2,
                  label="baseline + allowed increase")
    ax.set_xticks(x, joints, rotation=45 if len(joints) > 4 else 0, ha="right" if len(joints) > 4 else "center")
    if regression is not None:  # joints shown above the allowed increase: red, bold tick labels
        for label in ax.get_xticklabels():
            if label.get_text() in regressed:
                label.set_color("#c0392b")
                label.set_fontweight("bold")
        if regressed:
            ax.set_xlabel(f"joint (red: above the allowed increase, p ≤ {alpha:g} in this case alone;\n"
                          "the promotion overview says whether it holds across the candidate's cases)")
    ax.set_ylabel("mean |torque| per episode (N·m)")
    if not ax.get_xlabel():
        ax.set_xlabel("joint")
    ax.set_title("mean |torque| per episode, by joint" + (" — candidate vs baseline" if regression else ""),
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8)
    return fig


def joint_torque(table: dict[str, list], requirements: list[dict] | None = None, alpha: float = 0.05) -> bytes | None:
    fig = torque_figure(table, requirements, alpha)
    return None if fig is None else png(fig)


def time_to_fall_figure(table: dict[str, list], horizon: float):
    """When the falls happened, stacked by the episode's primary mode, so the counts add up with
    the failure-mode chart (a saturated episode may also have fallen)."""
    primary, fell = _primary_and_fell(table)
    times = table.get("time_to_fall", [])
    by_mode: dict[str, list] = {}
    for t, m, f in zip(times, primary, fell):
        if f:
            by_mode.setdefault(m or "succeeded", []).append(t)
    if not by_mode:
        return None
    fig, ax = _figure(3.8)
    names = sorted(by_mode, key=lambda m: -len(by_mode[m]))
    ax.hist([by_mode[m] for m in names], bins=min(24, max(6, int(horizon * 2))), range=(0.0, horizon), stacked=True,
            label=[f"{m} ({len(by_mode[m])})" for m in names])
    total = sum(len(v) for v in by_mode.values())
    ax.set_xlabel("time of the fall since the episode started (s)")
    ax.set_ylabel("episodes")
    ax.set_title(f"time to fall: {total} of {len(times)} episodes fell (by primary failure mode)", fontsize=10)
    ax.legend(title="primary mode", fontsize=8, loc="upper left")
    return fig


def time_to_fall(table: dict[str, list], horizon: float) -> bytes | None:
    fig = time_to_fall_figure(table, horizon)
    return None if fig is None else png(fig)


# -- across cases (the controller) ----------------------------------------------------------------
def one_sided_bounds(k: int, n: int, alpha: float) -> tuple[float, float]:
    """The exact one-sided (1 − alpha) lower and upper bounds the success verdict compares with
    the requirement (PASS: lower above it; FAIL: upper below it)."""

    if n <= 0:
        return 0.0, 1.0
    lower = 0.0 if k == 0 else beta_ppf(alpha, k, n - k + 1)
    upper = 1.0 if k == n else beta_ppf(1 - alpha, k + 1, n - k)
    return float(lower), float(upper)


def robustness_figure(xlabel: str, series: dict[str, list[tuple]], required: float | None, alpha: float,
                      title: str):
    """Success rate over a matrix axis, one line per policy. ``series``: policy → [(x, k, n,
    outcome)]. Each point carries its one-sided bounds as an error bar and the colour of its
    verdict; the requirement is the red line."""
    fig, ax = _figure(4.6)
    for i, (policy, points) in enumerate(sorted(series.items())):
        points = sorted(points)
        x = np.array([p[0] for p in points], dtype=float)
        rate = np.array([p[1] / p[2] if p[2] else math.nan for p in points])
        bounds = [one_sided_bounds(p[1], p[2], alpha) for p in points]
        colour = POLICY_COLOURS[i % len(POLICY_COLOURS)]
        shift = (i - (len(series) - 1) / 2) * 0.012 * (np.ptp(x) or 1.0)  # keep overlapping bars apart
        ax.plot(x + shift, rate, color=colour, linewidth=1.6, label=policy)
        ax.errorbar(x + shift, rate, yerr=[rate - [b[0] for b in bounds], [b[1] for b in bounds] - rate], fmt="none",
                    ecolor=colour, capsize=4, alpha=0.8)
        ax.scatter(x + shift, rate, s=60, zorder=3, edgecolors=colour,
                   c=[COLOURS.get(p[3], "#7f8c8d") for p in points])
    if required is not None:
        ax.axhline(required, color="#c0392b", linestyle="--", linewidth=1.5, label=f"required: success > {required:g}")
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    for outcome in ("PASS", "FAIL", "INCONCLUSIVE"):
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor=COLOURS[outcome], markeredgecolor="none"))
        labels.append(f"verdict {outcome}")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("success rate (successful / episodes)")
    ax.set_title(f"{title}\nbars: exact one-sided {1 - alpha:.0%} bounds "
                 "(PASS: lower bound above the line, FAIL: upper bound below)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8)
    return fig


def robustness_curve(xlabel: str, series: dict[str, list[tuple]], required: float | None, alpha: float,
                     title: str) -> bytes:
    return png(robustness_figure(xlabel, series, required, alpha, title))


def success_vs_baseline_figure(rows: list[dict], candidate: str, baseline: str, alpha: float):
    """Gating cases of one candidate: its success rate and the baseline's on the same episodes,
    each with its one-sided lower bound, and the requirement. ``rows``: [{case, k, n, bk, required,
    outcome}]."""
    fig, ax = _figure(1.4 + 0.42 * len(rows))
    y = np.arange(len(rows))[::-1]
    for offset, (label, key, colour) in zip((0.18, -0.18), ((candidate, "k", "#2980b9"), (f"baseline {baseline}", "bk", "#7f8c8d"))):
        rate = np.array([r[key] / r["n"] if r["n"] else math.nan for r in rows])
        lower = np.array([one_sided_bounds(r[key], r["n"], alpha)[0] for r in rows])
        ax.barh(y + offset, rate, height=0.34, color=colour, label=f"{label}: success rate")
        ax.errorbar(lower, y + offset, fmt="|", color="black", markersize=10)
    ax.scatter([r["required"] for r in rows], y, marker="|", s=600, color="#c0392b", label="required", zorder=4)
    ax.errorbar([], [], fmt="|", color="black", label=f"one-sided {1 - alpha:.0%} lower bound")
    ax.set_yticks(y, [r["case"] for r in rows], fontsize=8)
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("success rate (same episodes for both policies)")
    ax.set_title(f"{candidate} vs {baseline}: success by case", fontsize=10)
    fig.legend(loc="outside lower center", ncols=4, fontsize=8)
    return fig


def torque_vs_baseline_figure(case: str, numbers: dict, means: dict[str, float], candidate: str, baseline: str,
                              alpha: float = 0.05, confirmed: bool = False):
    """One case's per-joint mean |torque|: candidate, baseline (same episodes) and the most the
    candidate may average (the regression margin); joints shown above it are marked."""
    names = [j for j in (numbers.get("joints") or {}) if j in means]
    if not names:
        return None
    rows = [joint_vs_baseline(numbers, j, means[j], alpha) for j in names]
    fig, ax = _figure(4.6)
    x = np.arange(len(names))
    cand = np.array([means[j] for j in names])
    base = np.array([r[0] for r in rows])
    ax.bar(x - 0.2, cand, width=0.4, color="#2980b9", label=candidate)
    ax.bar(x + 0.2, base, width=0.4, color="#7f8c8d", label=f"baseline {baseline}")
    ax.hlines([r[1] for r in rows], x - 0.45, x + 0.45, colors="#c0392b", linestyles="--", linewidth=2,
              label="limit: baseline + allowed increase")
    for xi, (b, limit, hit) in zip(x, rows):
        if hit:
            ax.annotate(f"{cand[xi] / b - 1:+.1%}" if b else "", (xi - 0.2, cand[xi]), ha="center", va="bottom",
                        color="#c0392b", fontsize=8, fontweight="bold")
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylabel("mean |torque| over episodes (N·m)")
    verdict = "Holm-confirmed regression" if confirmed else "findings uncorrected"
    ax.set_title(f"{case}\nmean |torque| per joint, {candidate} vs {baseline} ({verdict})", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8)
    return fig
