"""The pictures of a case for its Allure report: failure modes, per-joint torque, time to fall,
and (per scenario, on the controller) the robustness curve of a matrix sweep. PNG bytes, drawn
with matplotlib's Agg backend; matplotlib is imported here only, when a report is wanted."""

from __future__ import annotations

import io
import math

import numpy as np


def _figure(width: float = 5.0, height: float = 3.0):
    import matplotlib

    matplotlib.use("Agg")  # no display on CI machines
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    return plt, fig, ax


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def failure_modes(modes: dict[str, int], episodes: int) -> bytes | None:
    if not modes:
        return None
    plt, fig, ax = _figure()
    names = list(modes)
    ax.barh(names[::-1], [modes[n] for n in names[::-1]], color="#c0392b")
    ax.set_xlabel(f"episodes (of {episodes})")
    ax.set_title("failure modes")
    return _png(plt, fig)


def joint_torque(table: dict[str, list]) -> bytes | None:
    """Per-episode mean |torque| per joint, as box plots; the peak as a marker."""
    joints = [k[len("mean_abs_torque["):-1] for k in table if k.startswith("mean_abs_torque[")]
    if not joints:
        return None
    plt, fig, ax = _figure(max(4.0, 0.6 * len(joints) + 2), 3.2)
    data = [np.asarray(table[f"mean_abs_torque[{j}]"], dtype=float) for j in joints]
    ax.boxplot(data, showfliers=False)
    peaks = [max(table.get(f"peak_abs_torque[{j}]", [math.nan])) for j in joints]
    ax.scatter(range(1, len(joints) + 1), peaks, marker="v", color="#c0392b", label="peak |torque|", zorder=3)
    ax.set_xticks(range(1, len(joints) + 1), joints, rotation=45 if len(joints) > 4 else 0)
    ax.set_ylabel("N·m")
    ax.set_title("mean |torque| per episode, by joint")
    ax.legend(loc="upper right", fontsize=8)
    return _png(plt, fig)


def time_to_fall(table: dict[str, list], horizon: float) -> bytes | None:
    times = [t for t in table.get("time_to_fall", []) if t is not None and math.isfinite(t)]
    if not times:
        return None
    plt, fig, ax = _figure()
    ax.hist(times, bins=min(20, max(5, len(times) // 3)), range=(0.0, horizon), color="#e67e22")
    ax.set_xlabel("s")
    ax.set_ylabel("falls")
    ax.set_title(f"time to fall ({len(times)} falls)")
    return _png(plt, fig)


def robustness_curve(axis: str, points: list[tuple[float, int, int]], required: float | None, alpha: float,
                     title: str) -> bytes:
    """Success rate against a matrix axis, with its exact two-sided (1 − alpha) band."""
    from scipy.stats import binomtest

    points = sorted(points)
    x = [p[0] for p in points]
    rate = [k / n if n else math.nan for _, k, n in points]
    bands = [binomtest(k, n).proportion_ci(1 - alpha, "exact") if n else None for _, k, n in points]
    plt, fig, ax = _figure()
    ax.fill_between(x, [b.low if b else math.nan for b in bands], [b.high if b else math.nan for b in bands],
                    color="#3498db", alpha=0.25, label=f"{1 - alpha:.0%} exact band")
    ax.plot(x, rate, marker="o", color="#2c3e50", label="success rate")
    if required is not None:
        ax.axhline(required, color="#c0392b", linestyle="--", label=f"required > {required:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(axis)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    return _png(plt, fig)
