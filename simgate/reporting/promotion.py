"""The promotion verdict, decided on the controller once every case has reported.

A candidate may be promoted when every requirement of every gating case PASSes (an
intersection–union rule: no correction needed) and no regression alarm survives Holm's
correction across its cases. Benjamini–Hochberg discoveries that Holm does not confirm are
warnings: shown, never blocking. Written to ``reports/verdict.json``; the exit code follows it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from simgate.paired import benjamini_hochberg, holm

REGRESSION = "not worse than "


def verdict_document(results: dict[str, dict]) -> dict:
    by_policy: dict[str, list[dict]] = {}
    for cid in sorted(results):
        payload = results[cid]
        policy = payload.get("case", {}).get("policy") or _policy_from_id(cid)
        by_policy.setdefault(policy, []).append(payload)
    candidates = {policy: _candidate(payloads) for policy, payloads in sorted(by_policy.items())}
    return {"promote": bool(candidates) and all(c["promote"] for c in candidates.values()), "candidates": candidates}


def _candidate(payloads: list[dict]) -> dict:
    blocking, requirements, modes, alarms, alpha = [], [], {}, {}, 0.05
    for payload in payloads:
        case = payload.get("case", {})
        cid, gate = case.get("id", "?"), case.get("gate", True)
        for mode, count in (payload.get("failure_modes") or {}).items():
            modes[mode] = modes.get(mode, 0) + count
        if gate and payload.get("outcome") == "ERROR":
            blocking.append(f"{cid}: {payload.get('error')}")
        for req in payload.get("requirements", []):
            requirements.append({"case": cid, "gate": gate, "requirement": req["name"], "outcome": req["outcome"],
                                 "observed": req["observed"], "statistic": req["bound"], "threshold": req["threshold"],
                                 "n": payload.get("episodes"), "failure_modes": payload.get("failure_modes", {})})
            if gate and req["outcome"] != "PASS":
                blocking.append(f"{cid}: {req['name']} {req['outcome']} ({req['observed']})")
            if gate and req["name"].startswith(REGRESSION):
                alarms[cid] = float(req["numbers"]["p_worse"])
                alpha = min(alpha, float(req["numbers"].get("alpha", alpha)))
    confirmed, discovered = holm(alarms, alpha), benjamini_hochberg(alarms, alpha)
    regressions = sorted(cid for cid, hit in confirmed.items() if hit)
    blocking += [f"{cid}: worse than the baseline (McNemar p={alarms[cid]:.3g}, Holm-corrected over "
                 f"{len(alarms)} cases)" for cid in regressions]
    warnings = [f"{cid}: possibly worse than the baseline (McNemar p={alarms[cid]:.3g}, Benjamini–Hochberg)"
                for cid in sorted(discovered) if discovered[cid] and cid not in regressions]
    return {"promote": not blocking, "blocking": blocking, "warnings": warnings, "regression_alarms": regressions,
            "failure_modes": dict(sorted(modes.items(), key=lambda kv: (-kv[1], kv[0]))), "requirements": requirements}


def _policy_from_id(cid: str) -> str:
    return cid.rsplit("-", 1)[-1]


def write_verdict(results: dict[str, dict], directory: Path) -> dict:
    document = verdict_document(results)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "verdict.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    document["path"] = str(path)
    return document


def verdict_lines(document: dict) -> list[str]:
    lines = [f"promotion: {'ALLOWED' if document['promote'] else 'BLOCKED'} ({document.get('path', 'verdict.json')})"]
    for policy, candidate in document["candidates"].items():
        state = "promote" if candidate["promote"] else f"blocked by {len(candidate['blocking'])} finding(s)"
        lines.append(f"  {policy}: {state}")
        lines += [f"    - {reason}" for reason in candidate["blocking"][:10]]
        if len(candidate["blocking"]) > 10:
            lines.append(f"    ... and {len(candidate['blocking']) - 10} more in verdict.json")
        lines += [f"    warning: {w}" for w in candidate["warnings"]]
    return lines
