"""Results of every case, gathered on the controller: a terminal table and reports/summary.json."""

from __future__ import annotations

import simgate
from simgate.contract import VERSION as CONTRACT
from simgate.reporting.overview import perturbation_costs
from simgate.verdict import NOT_WORSE, SUCCESS_RATE


def summary_document(results: dict[str, dict], run: dict) -> dict:
    """Every reported case, with ``run``: whether the run was complete and what it lacked."""
    outcomes: dict[str, int] = {}
    for payload in results.values():
        outcomes[payload["outcome"]] = outcomes.get(payload["outcome"], 0) + 1
    return {"simgate": simgate.__version__, "contract": CONTRACT, "complete": bool(run.get("complete")), "run": run,
            "totals": dict(sorted(outcomes.items())), "cases": {cid: results[cid] for cid in sorted(results)}}


#: the columns a table cut to the terminal's width keeps (the torque columns are in summary.json)
COMPACT = ("case", "success", "bound", "baseline", "modes", "verdict")
MODES_WIDTH = 24
MIN_CASE_WIDTH = 16


def table_lines(results: dict[str, dict], order: list[str] = (), width: int = 100, verbose: bool = False) -> list[str]:
    """One row per case, in ``order`` (the scenario files' order), then any others sorted. Cut to
    ``width`` columns (fewer columns, shortened case ids and failure modes) unless ``verbose``."""
    rows = [("case", "success", "bound", "baseline", "mean|τ|", "peak|τ|", "modes", "verdict")]
    ids = [cid for cid in order if cid in results]
    for cid in ids + sorted(set(results) - set(ids)):
        rows.append(_row(cid, results[cid]))
    if not verbose:
        # the baseline column only when some case has a baseline: the width goes to the case ids
        columns = [c for c in COMPACT if c != "baseline" or any(row[3] != "-" for row in rows[1:])]
        keep = [rows[0].index(name) for name in columns]
        rows = [tuple(row[i] for i in keep) for row in rows]
        at = columns.index("modes")
        rows = [row[:at] + (_shorten(row[at], MODES_WIDTH, middle=False),) + row[at + 1:] for row in rows]
        others = sum(max(len(r[i]) for r in rows) for i in range(1, len(columns))) + 2 * (len(columns) - 1)
        case_width = max(width - others, MIN_CASE_WIDTH)
        rows = [(_shorten(row[0], case_width),) + row[1:] for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if verbose:
        return lines
    return [line[:width] for line in lines] + ["(-v: the full table, with torque columns and whole case ids)"]


def _shorten(text: str, width: int, middle: bool = True) -> str:
    """``text`` in at most ``width`` characters, its middle elided (a case id's scenario is at its
    start and its policy at its end) or its end (failure modes come most frequent first)."""
    if len(text) <= width:
        return text
    if not middle:
        return text[:width - 1] + "…"
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def _row(cid: str, payload: dict) -> tuple[str, ...]:
    success = bound = baseline = "-"
    for req in payload.get("requirements", []):
        if req["kind"] == SUCCESS_RATE:
            success, bound = req["observed"].split(" ")[0], _bound(req)
        elif req["kind"] == NOT_WORSE:  # the baseline's own successes on the same episodes
            n = req["numbers"]
            baseline = f"{round(n['baseline_rate'] * n['n'])}/{n['n']}"
    metrics = payload.get("metrics") or {}
    mean = _max_of(metrics, "mean_abs_torque[")
    peak = _max_of(metrics, "peak_abs_torque[")
    modes = ",".join(f"{m}:{c}" for m, c in (payload.get("failure_modes") or {}).items()) or "-"
    verdict = payload["outcome"] if payload.get("case", {}).get("gate", True) else f"{payload['outcome']} (info)"
    return (cid, success, bound, baseline, mean, peak, modes, verdict)


def _bound(req: dict) -> str:
    n = req["numbers"]
    if "method" in n:  # sequential: the decision rests on the boundary crossing, not an interval
        return f"{n['method']}@{n['n']}"
    value = n["upper"] if req["outcome"] == "FAIL" else n["lower"]
    side = "≤" if req["outcome"] == "FAIL" else "≥"
    return f"p{side}{value:.3f}"


def _max_of(metrics: dict, prefix: str) -> str:
    values = [v for k, v in metrics.items() if k.startswith(prefix) and v is not None]
    return f"{max(values):.3g}" if values else "-"


def cost_lines(results: dict[str, dict], top: int = 10) -> list[str]:
    """The perturbations that cost most (each policy's benign arm), for the terminal."""

    ranked = perturbation_costs(results)
    if not ranked:
        return []
    lines = ["perturbation costs (success without minus with, same seeds, 95% interval; costliest first):"]
    for label, arms in ranked[:top]:
        said = ", ".join(f"{policy} {100 * a['drop']:.0f} points ({100 * a['low']:.0f} to {100 * a['high']:.0f})"
                         for policy, a in sorted(arms.items(), key=lambda kv: -kv[1]["drop"]))
        lines.append(f"  {label}: {said}")
    if len(ranked) > top:
        lines.append(f"  ... and {len(ranked) - top} more (summary.json: each case's 'benign')")
    return lines
