"""The promotion verdict, decided on the controller once the run has ended.

A candidate may be promoted when every case collected for it reported, every absolute requirement
of every gating case PASSes (an intersection–union rule: a false PASS of the whole needs a false
PASS of some requirement, so each keeps its own level) and no finding against the baseline
survives Holm's correction over the candidate's whole run. The findings against the baseline
(REGRESSION_KINDS: McNemar 'worse', per-joint torque ratio) are one family per candidate: each
gating case contributes one p-value, min(p_success / s, p_torque_j · J / (1 − s)) (a weighted
Bonferroni inside the case, s = SUCCESS_SHARE), and Holm over the cases at the smallest scenario
alpha bounds the chance that an unchanged policy is blocked by any of them, whatever the number of
cases and however their outcomes are correlated. Benjamini–Hochberg discoveries that Holm does not
confirm are warnings: shown, never blocking. docs/statistics.md gives the reasoning.

The verdict describes the whole run or nothing: a case that was deselected (``-k``, ``--lf``,
``--deselect``, a node id), that never reported (interrupted, ``-x``, a hang) or whose record
broke the result contract leaves the run incomplete, and an incomplete run never says
"promote". Cases are grouped by the policy their collected :class:`Case` names; nothing is
recovered from test ids. Written to ``verdict.json``; the exit code follows it.
"""

from __future__ import annotations

from simgate.outcomes import POLICY_ERROR
from simgate.paired import benjamini_hochberg, holm
from simgate.reporting.overview import candidate_state
from simgate.verdict import DETERMINISM, FAMILY_LEVEL, NOT_WORSE, REGRESSION_KINDS, SUCCESS_SHARE, TORQUE_VS_BASELINE

#: the four outcomes of a run and of each candidate: PASS (promotable), FAIL (a requirement not
#: met, or a regression the family confirmed), INCONCLUSIVE (the evidence does not decide: more
#: episodes would), INVALID (the evidence cannot be trusted: a partial or interrupted run, a case
#: that crashed or could not run, a nondeterministic episode). Mildest first: one finding of a
#: graver kind decides.
PASS, INCONCLUSIVE, FAIL, INVALID = "PASS", "INCONCLUSIVE", "FAIL", "INVALID"
SEVERITY = (PASS, INCONCLUSIVE, FAIL, INVALID)
#: the process's exit code for each outcome (3 is also pytest's internal error: a fault in simgate
#: leaves no evidence either; pytest's usage error, 4, is left as it is)
EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 2, INVALID: 3}


def worst(outcomes) -> str:
    """The gravest of some outcomes (PASS for none)."""
    return max(outcomes, key=SEVERITY.index, default=PASS)


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
    for candidate in candidates.values():  # an incomplete run promotes nobody, not even a candidate it covered
        candidate["promote"] = candidate["passed"] and complete
        if not complete:
            candidate["outcome"] = INVALID
    # no candidate at all is no evidence at all
    decision = INVALID if not complete or not candidates else worst(c["outcome"] for c in candidates.values())
    return {"promote": decision == PASS, "decision": decision, "exit_code": EXIT_CODES[decision], "complete": complete,
            "interrupted": bool(run.get("interrupted")), "run": run.get("id"),
            "deselected": sorted(run.get("deselected", [])), "missing": sorted(run.get("missing", [])),
            "candidates": candidates}


def case_p_value(requirements: list[dict]) -> float | None:
    """A case's one p-value for the regression family: its McNemar 'worse' p-value and its joints'
    torque p-values, combined by a weighted Bonferroni (the success test gets SUCCESS_SHARE of the
    case's level, the J joints the rest in equal parts); None without a baseline."""
    terms = _case_terms(requirements)
    return min(1.0, *terms.values()) if terms else None


def _case_terms(requirements: list[dict]) -> dict[str, float]:
    """The weighted Bonferroni's terms of a case, by regression kind: the McNemar p over its share,
    J × the smallest joint p over the rest (a test alone in its case keeps the whole level)."""
    success = next((r for r in requirements if r["kind"] == NOT_WORSE), None)
    torque = next((r for r in requirements if r["kind"] == TORQUE_VS_BASELINE), None)
    joints = [float(j["p_regression"]) for j in (torque or {}).get("numbers", {}).get("joints", {}).values()]
    terms = {}
    if success is not None:
        terms[NOT_WORSE] = float(success["numbers"]["p_worse"]) / (SUCCESS_SHARE if joints else 1.0)
    if joints:
        terms[TORQUE_VS_BASELINE] = min(joints) * len(joints) / ((1 - SUCCESS_SHARE) if success is not None else 1.0)
    return terms


def case_drivers(requirements: list[dict]) -> set[str]:
    """The regression kinds whose test gives the case its p-value (:func:`case_p_value`, the
    smaller of the two weighted terms; both on a tie): when the family confirms the case, these
    show the regression; the other test of the case, on its own, does not."""
    terms = _case_terms(requirements)
    least = min(terms.values(), default=None)
    return {kind for kind, term in terms.items() if term == least}


def _self_compared(requirements: list[dict], policy: str) -> bool:
    """The baseline evaluated as a candidate is compared with itself: its discordant pairs are
    all zero, its p-value 1. It says nothing, and as a member it would only enlarge the family."""
    return any(r["kind"] in REGRESSION_KINDS and (r.get("numbers") or {}).get("baseline") == policy
               for r in requirements)


def _candidate(ids: list[str], cases: dict, results: dict, not_run: dict) -> dict:
    findings, requirements, modes, members, alpha, absolute = [], [], {}, {}, FAMILY_LEVEL, 0
    levels = set()
    unevaluated = [f"{cid}: not evaluated ({not_run[cid]})" for cid in ids if cid in not_run]
    for cid in ids:
        if cid in not_run or cid not in results:
            continue
        payload, gate = results[cid], cases[cid].gate
        for mode, count in (payload.get("failure_modes") or {}).items():
            modes[mode] = modes.get(mode, 0) + count
        # a crash blocks even an informational case: whatever killed it may have touched others
        if payload["outcome"] == "ERROR" and (gate or payload.get("status") == "crashed"):
            # a policy that hung is the candidate's own failure (its episodes ended as policy_error);
            # any other error (a crash, a file refused, a fault) left no evidence to judge it by
            own = payload.get("status") != "crashed" and POLICY_ERROR in (payload.get("failure_modes") or {})
            findings.append({"case": cid, "kind": "error", "outcome": FAIL if own else INVALID,
                             "text": str(payload.get("error"))})
        reqs = payload.get("requirements", [])
        for req in reqs:
            if req["kind"] == DETERMINISM and req["outcome"] == "FAIL":
                # episodes that do not repeat are no evidence, for this case or (same engine, same
                # policy) any other: informational or not
                findings.append({"case": cid, "kind": "nondeterminism", "outcome": INVALID,
                                 "text": f"{req['name']} FAIL ({req['observed']}): the episodes do not repeat, so "
                                         "no figure of this run can be trusted"})
            requirements.append({"case": cid, "gate": gate, "kind": req["kind"], "requirement": req["name"],
                                 "outcome": req["outcome"], "observed": req["observed"], "statistic": req["bound"],
                                 "threshold": req["threshold"], "n": payload.get("episodes"),
                                 "failure_modes": payload.get("failure_modes", {})})
            if req["kind"] in REGRESSION_KINDS:
                continue  # judged below, as one family
            if gate:
                absolute += 1
                levels.add(float(cases[cid].alpha))
                if req["outcome"] != "PASS" and not (req["kind"] == DETERMINISM and req["outcome"] == "FAIL"):
                    outcome = {"FAIL": FAIL, "INCONCLUSIVE": INCONCLUSIVE}.get(req["outcome"], INVALID)
                    findings.append({"case": cid, "kind": "requirement", "outcome": outcome,
                                     "text": f"{req['name']} {req['outcome']} ({req['observed']})"})
        p = case_p_value(reqs)
        if gate and p is not None and not _self_compared(reqs, cases[cid].policy):
            members[cid] = p
            alpha = min(alpha, float(cases[cid].alpha))
    confirmed, discovered = holm(members, alpha), benjamini_hochberg(members, alpha)
    regressions = sorted(cid for cid, hit in confirmed.items() if hit)
    findings += [{"case": cid, "kind": "regression", "outcome": FAIL,
                  "text": f"worse than the baseline (case p={members[cid]:.3g}, Holm-confirmed over the "
                          f"{len(members)} cases of the regression family at {alpha:g})"} for cid in regressions]
    blocking = [f"{f['case']}: {f['text']}" for f in findings]
    warnings = [f"{cid}: possibly worse than the baseline (case p={members[cid]:.3g}, Benjamini–Hochberg)"
                for cid in sorted(discovered) if discovered[cid] and cid not in regressions]
    drivers = {cid: case_drivers(results[cid].get("requirements", [])) for cid in regressions}
    for entry in requirements:  # what the family made of each case's findings
        if entry["kind"] in REGRESSION_KINDS and entry["case"] in members:
            # a confirmed case is shown by the test that gave it its p-value, not by both
            hit = entry["case"] in regressions and entry["kind"] in drivers[entry["case"]]
            entry["finding"] = ("regression (Holm-confirmed)" if hit else
                                "not shown (the case is confirmed through its other test)" if entry["case"] in regressions
                                else "not shown")
            entry["outcome"] = "FAIL" if hit else "PASS"
    level = max(levels, default=alpha)
    families = {
        "regression": {
            "correction": "Holm", "level": alpha, "size": len(members),
            "member": "one p-value per gating case: min(McNemar 'worse' p / %g, J × smallest torque-ratio p / %g)"
                      % (SUCCESS_SHARE, 1 - SUCCESS_SHARE),
            "guarantee": f"an unchanged policy is blocked by a finding against the baseline with probability ≤ {alpha:g}",
            "p_values": {cid: members[cid] for cid in sorted(members)}, "confirmed": regressions},
        "absolute": {
            "correction": "none (intersection–union)", "size": absolute, "level_per_requirement": level,
            "guarantee": f"a policy that violates any requirement PASSes it with probability ≤ {level:g}, so it is "
                         f"promoted with probability ≤ {level:g}",
            "implies": f"{absolute} requirements must all PASS: a policy exactly at every threshold is falsely FAILed "
                       f"somewhere with probability up to min(1, {absolute} × {level:g}) = {min(1.0, absolute * level):.3g}; "
                       f"a good policy passes all only if each has power ≥ 1 − β/{max(absolute, 1)} for an overall "
                       "1 − β (INCONCLUSIVE blocks too)"}}
    outcome = worst([f["outcome"] for f in findings] + ([INVALID] if unevaluated else []))
    return {"passed": not blocking and not unevaluated, "complete": not unevaluated, "outcome": outcome,
            "blocking": blocking, "findings": findings,
            "not_evaluated": unevaluated, "warnings": warnings, "regression_alarms": regressions,
            "families": families,
            "cases": len(ids), "failure_modes": dict(sorted(modes.items(), key=lambda kv: (-kv[1], kv[0]))),
            "requirements": requirements}


def _incomplete(document: dict) -> str:
    parts = []
    if document["deselected"]:
        parts.append(f"{len(document['deselected'])} case(s) not selected (-k, --lf, --deselect or node ids)")
    if document["missing"]:
        parts.append(f"{len(document['missing'])} case(s) did not report")
    if document["interrupted"]:
        parts.append("the run was interrupted")
    return "; ".join(parts) or "not every case reported"


def outcome_line(document: dict) -> str:
    """The run's outcome in one line, the terminal's last: the outcome, its exit code, why."""
    decision = document["decision"]
    code = EXIT_CODES.get(decision, EXIT_CODES[INVALID])
    candidates = document.get("candidates") or {}
    if not document.get("complete", True):
        why = f"incomplete run, {_incomplete(document)}: nobody is promoted"
    elif not candidates:
        why = "no case was evaluated"
    else:
        why = ", ".join(f"{policy} {c.get('outcome', FAIL)}" for policy, c in candidates.items())
    return f"simgate: {decision} (exit {code}): {why}"


def verdict_lines(document: dict, where: str = "verdict.json") -> list[str]:
    decision = document["decision"]
    if not document.get("complete", True):
        head = f"promotion: {decision}: incomplete run, {_incomplete(document)} ({where})"
    else:
        head = f"promotion: {decision} ({where})"
    lines = [head]
    for policy, candidate in document["candidates"].items():
        lines.append(f"  {policy}: {candidate_state(candidate)[0]}")
        shown = candidate["blocking"] + candidate["not_evaluated"]
        lines += [f"    - {reason}" for reason in shown[:10]]
        if len(shown) > 10:
            lines.append(f"    ... and {len(shown) - 10} more in {where}")
        lines += [f"    warning: {w}" for w in candidate["warnings"]]
    return lines
