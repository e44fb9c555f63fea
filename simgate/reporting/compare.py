"""Candidates side by side: each candidate's paired outcomes against the baseline (the episodes
both ran on the same seeds), and the candidates' search boundaries on one plot per axis."""

from __future__ import annotations

import math

import numpy as np

from simgate.reporting.plots import DPI, WIDTH, _figure
from simgate.verdict import NOT_WORSE, SUCCESS_RATE


def paired_rows(results: dict[str, dict]) -> dict[tuple[str, str], list[dict]]:
    """(candidate, baseline) → one row per gating case compared with that baseline: how many
    episode pairs both succeeded, only the baseline did (the candidate lost them), only the
    candidate did, neither did. A policy compared with itself is left out."""
    out: dict[tuple[str, str], list[dict]] = {}
    for cid in sorted(results):
        payload = results[cid]
        case = payload.get("case", {})
        req = next((r for r in payload.get("requirements", []) if r.get("kind") == NOT_WORSE), None)
        if req is None or not case.get("gate", True):
            continue
        n = req.get("numbers", {})
        baseline = n.get("baseline")
        total, n10, n01 = n.get("n"), n.get("n10"), n.get("n01")
        k, judged = _successes(payload)
        # the pairs are the episodes the success test judged (a sequential case may have run more)
        if baseline == case.get("policy") or None in (total, n10, n01, k) or not total or judged != total:
            continue
        out.setdefault((case.get("policy"), baseline), []).append(
            {"case": cid, "n": total, "both": k - n01, "lost": n10, "gained": n01, "neither": total - k - n10})
    return out


def _successes(payload: dict) -> tuple[int | None, int | None]:
    """(successes, episodes) of the case's success requirement."""
    for r in payload.get("requirements", []):
        if r.get("kind") == SUCCESS_RATE:
            numbers = r.get("numbers") or {}
            return numbers.get("k"), numbers.get("n")
    return None, None


def paired_figure(rows: list[dict], candidate: str, baseline: str):
    """Stacked bars per case, in episode pairs: both succeeded, only the baseline (lost), only
    the candidate (gained), neither."""

    fig, ax = _figure(1.4 + 0.4 * len(rows))
    y = np.arange(len(rows))[::-1]
    left = np.zeros(len(rows))
    for key, label, colour in (("both", "both succeeded", "#27ae60"), ("lost", f"only {baseline} (lost)", "#c0392b"),
                               ("gained", f"only {candidate} (gained)", "#2980b9"), ("neither", "neither", "#bdc3c7")):
        share = np.array([r[key] / r["n"] for r in rows])
        ax.barh(y, share, left=left, color=colour, label=label, height=0.6)
        for yy, x0, s, r in zip(y, left, share, rows):
            if r[key] and s > 0.04:
                ax.text(x0 + s / 2, yy, str(r[key]), ha="center", va="center", fontsize=7, color="white")
        left += share
    ax.set_yticks(y, [r["case"] for r in rows], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the episode pairs (same seeds)")
    ax.set_title(f"{candidate} vs {baseline}: paired outcomes per case", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def boundary_rows(results: dict[str, dict]) -> dict[str, dict[str, list[dict]]]:
    """Search scenario → axis → one row per policy: the boundary's estimate and interval."""
    out: dict[str, dict[str, list[dict]]] = {}
    for cid in sorted(results):
        payload = results[cid]
        search, case = payload.get("search"), payload.get("case", {})
        if not isinstance(search, dict):
            continue
        per_axis = (search.get("boundary") or {}).get("per_axis") or {}
        for axis in search.get("axes") or []:
            entry = per_axis.get(axis.get("name")) or {}
            out.setdefault(case.get("scenario", cid), {}).setdefault(axis.get("name"), []).append(
                {"policy": case.get("policy"), "estimate": entry.get("estimate"), "low": entry.get("low"),
                 "high": entry.get("high"), "status": entry.get("status"), "unit": axis.get("unit") or "",
                 "range": (axis.get("low"), axis.get("high")),
                 "confirmation": (entry.get("confirmation") or {}).get("status")})
    return {s: axes for s, axes in out.items() if any(len(rows) > 1 for rows in axes.values())}


def _confirmed_words(status) -> str:
    return {"confirmed": "confirmed on fresh seeds", "contradicted": "contradicted on fresh seeds"}.get(
        status, "not confirmed on fresh seeds")


def boundaries_figure(scenario: str, axes: dict[str, list[dict]]):
    """One panel per axis: each policy's boundary with its interval, the searched range shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(axes)
    fig, grid = plt.subplots(len(names), 1, figsize=(WIDTH, 0.8 + 1.1 * sum(len(axes[n]) for n in names)), dpi=DPI,
                             layout="constrained", squeeze=False)
    for ax, name in zip(grid[:, 0], names):
        rows = axes[name]
        lo, hi = rows[0]["range"]
        for i, r in enumerate(rows):
            est = r["estimate"]
            if isinstance(est, (int, float)) and math.isfinite(est):
                a = r["low"] if isinstance(r["low"], (int, float)) else lo
                b = r["high"] if isinstance(r["high"], (int, float)) else hi
                ax.errorbar([est], [i], xerr=[[max(est - a, 0)], [max(b - est, 0)]], fmt="o", capsize=4, color="#1a5276")
                # only a boundary that held up on fresh seeds reads as confirmed (simgate.search.confirm)
                ax.annotate(_confirmed_words(r.get("confirmation")), (est, i), xytext=(0, 6), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7,
                            color="#1a5276" if r.get("confirmation") == "confirmed" else "#7f8c8d")
            else:
                ax.text(lo, i, "  " + (r['status'] or 'no boundary').replace('_', ' '), va="center", fontsize=8, color="#7f8c8d")
        ax.set_yticks(range(len(rows)), [r["policy"] for r in rows], fontsize=8)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
            ax.set_xlim(lo, hi)
        ax.set_xlabel(f"{name}" + (f" ({rows[0]['unit']})" if rows[0]["unit"] else "")
                      + ": where success crosses the target, other axes at nominal (bars: interval)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{scenario}: the candidates' failure boundaries", fontsize=11)
    return fig
