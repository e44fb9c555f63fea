"""The promotion verdict, decided on the controller once the run has ended.

A candidate may be promoted when every case collected for it reported, every requirement of every
gating case PASSes (an intersection–union rule: no correction needed) and no regression alarm
survives Holm's correction across its cases. Benjamini–Hochberg discoveries that Holm does not
confirm are warnings: shown, never blocking.

The verdict describes the whole run or nothing: a case that was deselected (``-k``, ``--lf``,
``--deselect``, a node id), that never reported (interrupted, ``-x``, a hang) or whose record
broke the result contract leaves the run incomplete, and an incomplete run never says
"promote". Cases are grouped by the policy their collected :class:`Case` names; nothing is
recovered from test ids. Written to ``verdict.json``; the exit code follows it.
"""

from __future__ import annotations

from simgate.paired import benjamini_hochberg, holm
from simgate.verdict import NOT_WORSE

ALLOWED, BLOCKED, INCOMPLETE = "ALLOWED", "BLOCKED", "INCOMPLETE"


def verdict_document(results: dict[str, dict], cases: dict, run: dict) -> dict:
    """``results``: case id → contract record; ``cases``: every case the run was meant to evaluate
    (id → Case); ``run``: what :mod:`simgate.controller` found about completeness."""
    not_run = {cid: "deselected" for cid in run.get("deselected", [])}
    not_run.update({cid: "missing" for cid in run.get("missing", [])})
    by_policy: dict[str, list] = {}
    for cid in sorted(cases):
        by_policy.setdefault(cases[cid].policy, []).append(cid)
    candidates = {policy: _candidate(ids, cases, results, not_run) for policy, ids in sorted(by_policy.items())}
    complete = bool(run.get("complete")) and not not_run
    blocked = any(not c["passed"] for c in candidates.values())
    for candidate in candidates.values():  # an incomplete run promotes nobody, not even a candidate it covered
        candidate["promote"] = candidate["passed"] and complete
    decision = INCOMPLETE if not complete else BLOCKED if blocked or not candidates else ALLOWED
    return {"promote": decision == ALLOWED, "decision": decision, "complete": complete,
            "interrupted": bool(run.get("interrupted")), "run": run.get("id"),
            "deselected": sorted(run.get("deselected", [])), "missing": sorted(run.get("missing", [])),
            "candidates": candidates}


def _candidate(ids: list[str], cases: dict, results: dict, not_run: dict) -> dict:
    blocking, requirements, modes, alarms, alpha = [], [], {}, {}, 0.05
    unevaluated = [f"{cid}: not evaluated ({not_run[cid]})" for cid in ids if cid in not_run]
    for cid in ids:
        if cid in not_run or cid not in results:
            continue
        payload, gate = results[cid], cases[cid].gate
        for mode, count in (payload.get("failure_modes") or {}).items():
            modes[mode] = modes.get(mode, 0) + count
        # a crash blocks even an informational case: whatever killed it may have touched others
        if payload["outcome"] == "ERROR" and (gate or payload.get("status") == "crashed"):
            blocking.append(f"{cid}: {payload.get('error')}")
        for req in payload.get("requirements", []):
            requirements.append({"case": cid, "gate": gate, "kind": req["kind"], "requirement": req["name"],
                                 "outcome": req["outcome"], "observed": req["observed"], "statistic": req["bound"],
                                 "threshold": req["threshold"], "n": payload.get("episodes"),
                                 "failure_modes": payload.get("failure_modes", {})})
            if gate and req["outcome"] != "PASS":
                blocking.append(f"{cid}: {req['name']} {req['outcome']} ({req['observed']})")
            if gate and req["kind"] == NOT_WORSE:
                alarms[cid] = float(req["numbers"]["p_worse"])
                alpha = min(alpha, float(req["numbers"].get("alpha", alpha)))
    confirmed, discovered = holm(alarms, alpha), benjamini_hochberg(alarms, alpha)
    regressions = sorted(cid for cid, hit in confirmed.items() if hit)
    blocking += [f"{cid}: worse than the baseline (McNemar p={alarms[cid]:.3g}, Holm-corrected over "
                 f"{len(alarms)} cases)" for cid in regressions]
    warnings = [f"{cid}: possibly worse than the baseline (McNemar p={alarms[cid]:.3g}, Benjamini–Hochberg)"
                for cid in sorted(discovered) if discovered[cid] and cid not in regressions]
    return {"passed": not blocking and not unevaluated, "complete": not unevaluated, "blocking": blocking,
            "not_evaluated": unevaluated, "warnings": warnings, "regression_alarms": regressions,
            "cases": len(ids), "failure_modes": dict(sorted(modes.items(), key=lambda kv: (-kv[1], kv[0]))),
            "requirements": requirements}


def verdict_lines(document: dict, where: str = "verdict.json") -> list[str]:
    decision = document["decision"]
    if decision == INCOMPLETE:
        parts = []
        if document["deselected"]:
            parts.append(f"{len(document['deselected'])} case(s) not selected (-k, --lf, --deselect or node ids)")
        if document["missing"]:
            parts.append(f"{len(document['missing'])} case(s) did not report")
        if document["interrupted"]:
            parts.append("the run was interrupted")
        head = f"promotion: NOT DECIDED: incomplete run, {'; '.join(parts) or 'not every case reported'} ({where})"
    else:
        head = f"promotion: {decision} ({where})"
    lines = [head]
    for policy, candidate in document["candidates"].items():
        if candidate["promote"]:
            state = "promote"
        elif candidate["passed"]:
            state = "met every requirement, but the run is incomplete: not promoted"
        elif not candidate["complete"]:
            state = f"not decided: {len(candidate['not_evaluated'])} of {candidate['cases']} case(s) not evaluated"
        else:
            state = f"blocked by {len(candidate['blocking'])} finding(s)"
        lines.append(f"  {policy}: {state}")
        shown = candidate["blocking"] + candidate["not_evaluated"]
        lines += [f"    - {reason}" for reason in shown[:10]]
        if len(shown) > 10:
            lines.append(f"    ... and {len(shown) - 10} more in {where}")
        lines += [f"    warning: {w}" for w in candidate["warnings"]]
    return lines
