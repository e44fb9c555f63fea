"""What the report says about each case and each candidate, decided on the controller from the
run's final records: the case records and ``verdict.json`` after the regression families were
judged. A worker knows only its own case; the family's decision (is this drop a confirmed
regression?) and the candidate's verdict exist only here. So the Allure result a worker wrote for
a case is rewritten from :func:`case_states` (its status, status line, decision block and tags),
and every candidate gets one result of its own whose status is its promotion decision: no page,
status, category or headline count of the report can disagree with ``verdict.json``.

Statuses, one per decision (the report's counts are these decisions and nothing else):

=========  ==================================================================================
passed     a gating case with no blocking finding; a candidate that may be promoted
failed     a gating case that blocks its candidate (a requirement FAILed, or a regression
           confirmed by the candidate's family); a blocked candidate
broken     a gating case that blocks because it could not be decided (INCONCLUSIVE) or could
           not run (an error); a candidate not decided (incomplete run); a crashed
           informational case (a crash blocks whatever the gate)
skipped    an informational case (``gate: false``), whatever its outcome: shown, never blocking
=========  ==================================================================================
"""

from __future__ import annotations

import dataclasses
import html

from simgate.benign import describe
from simgate.reporting.overview import candidate_state
from simgate.reporting.promotion import case_drivers
from simgate.verdict import REGRESSION_KINDS

#: the first words of every status line, one per reason: the report's categories match them
BLOCKS = "BLOCKS promotion"
REASONS = {
    "requirement": f"{BLOCKS} · requirement not met",
    "regression": f"{BLOCKS} · regression against the baseline (confirmed by the family)",
    "inconclusive": f"{BLOCKS} · not decided: needs more episodes (INCONCLUSIVE)",
    "error": f"{BLOCKS} · case error",
    "nondeterministic": f"{BLOCKS} · the episodes do not repeat (INVALID)",
    "informational": "INFORMATIONAL (gate: false)",
    "informational_pass": "INFORMATIONAL (gate: false): passed",  # under no category: nothing to explain
    "pass": "PASS",
}
STATUS = {"requirement": "failed", "regression": "failed", "inconclusive": "broken", "error": "broken",
          "nondeterministic": "broken",
          "informational": "skipped", "informational_pass": "skipped", "pass": "passed"}
#: a candidate's outcome → its result's status
CANDIDATE_STATUS = {"PASS": "passed", "FAIL": "failed", "INCONCLUSIVE": "broken", "INVALID": "broken"}


@dataclasses.dataclass(frozen=True)
class CaseState:
    case: str
    policy: str
    gate: bool
    reason: str          # a key of REASONS
    headline: str        # the status line
    items: tuple         # the decision block: one line per requirement, as (verdict, text)

    @property
    def status(self) -> str:
        return STATUS[self.reason]


def candidate_decision(candidate: dict) -> str:
    """PASS, FAIL, INCONCLUSIVE or INVALID: one candidate's outcome as the overview reads it
    (:func:`simgate.reporting.overview.candidate_state`; the run's is the gravest of them)."""
    return candidate_state(candidate)[1]


def dominant_mode(payload: dict, fell: int = 0) -> str:
    """The one failure mode a case is filed under: ``fell`` if any episode fell (the outcome, for
    a robotics reader, whatever rule named its primary mode: saturation is a symptom), else its
    most frequent primary mode, else a search's first counterexample's mode, else ``none``."""
    if fell:
        return "fell"
    modes = payload.get("failure_modes") or {}
    if modes:
        return max(sorted(modes), key=lambda m: modes[m])
    found = [c.get("mode") for c in ((payload.get("search") or {}).get("counterexamples") or [])
             if isinstance(c, dict) and c.get("mode")]
    return found[0] if found else "none"  # a search case whose own episodes all succeeded: what it found


def case_states(results: dict[str, dict], cases: dict, verdict: dict | None,
                falls: dict[str, int] | None = None) -> dict[str, CaseState]:
    """Per case that reported: its decision as ``verdict.json`` has it. ``falls``: case id → how
    many of its episodes fell (the workers' count, from the episode table the record lacks)."""
    verdict = verdict or {}
    falls = falls or {}
    out = {}
    for cid, payload in results.items():
        case = cases.get(cid)
        policy = case.policy if case is not None else payload.get("case", {}).get("policy", "?")
        gate = bool(case.gate) if case is not None else bool(payload.get("case", {}).get("gate", True))
        baseline = case.baseline if case is not None else payload.get("case", {}).get("baseline")
        candidate = (verdict.get("candidates") or {}).get(policy) or {}
        findings = [f for f in candidate.get("findings", []) if f.get("case") == cid]
        family = (candidate.get("families") or {}).get("regression") or {}
        out[cid] = _state(cid, policy, gate, baseline, payload, findings, family, falls.get(cid, 0))
    return out


def _state(cid, policy, gate, baseline, payload, findings, family, fell: int) -> CaseState:
    kinds = {f["kind"] for f in findings}
    own = [r for r in payload.get("requirements", []) if r["kind"] not in REGRESSION_KINDS]
    failed = [r for r in own if r["outcome"] == "FAIL"]
    undecided = [r for r in own if r["outcome"] == "INCONCLUSIVE"]
    if "error" in kinds:
        reason = "error"
    elif "nondeterminism" in kinds:  # no figure of the run can be trusted, informational or not
        reason = "nondeterministic"
    elif not gate:
        reason = "informational" if payload.get("outcome") != "PASS" else "informational_pass"
    elif "requirement" in kinds and failed:
        reason = "requirement"
    elif "regression" in kinds:
        reason = "regression"
    elif "requirement" in kinds:
        reason = "inconclusive"
    else:
        reason = "pass"
    drivers = case_drivers(payload.get("requirements", []))
    items = tuple(_item(r, policy, baseline, cid, family, drivers) for r in payload.get("requirements", []))
    if payload.get("benign"):  # a description beside the verdicts: it blocks nothing
        items += (("BENIGN ARM", describe(payload["benign"])),)
    parts = [REASONS[reason]]
    if reason not in ("pass", "informational_pass"):
        parts.append(dominant_mode(payload, fell))
    if fell:
        parts.append(f"fell in {fell} of {payload.get('episodes')} episodes")
    if reason == "error":
        parts.append(str(payload.get("error") or "").splitlines()[0][:200] if payload.get("error") else "error")
    elif reason == "informational":
        parts.append("passed" if payload.get("outcome") == "PASS" else payload.get("outcome", "?"))
    if reason in ("requirement", "informational"):
        parts += [f"{r['name']}: {r['outcome']} ({r['observed']})" for r in failed + undecided]
    if reason == "inconclusive":
        parts += [f"{r['name']} ({r['observed']})" for r in undecided]
    if "regression" in kinds:
        parts.append(_family_phrase(cid, family, confirmed=True))
    return CaseState(cid, policy, gate, reason, " · ".join(p for p in parts if p), items)


def _family_phrase(cid: str, family: dict, confirmed: bool) -> str:
    p = (family.get("p_values") or {}).get(cid)
    size, level = family.get("size"), family.get("level")
    p_text = f"this case's p = {p:.3g}, " if isinstance(p, (int, float)) else ""
    verb = "regression confirmed" if confirmed else "no regression shown"
    return f"{verb} by the candidate's family ({p_text}Holm over {size} case(s) at level {level:g})" \
        if isinstance(level, (int, float)) else verb


def _item(r: dict, policy: str, baseline: str | None, cid: str, family: dict, drivers=frozenset()) -> tuple[str, str]:
    """(verdict, one line) of a requirement as the decision has it: a finding against the
    baseline is the family's decision, never the case's own uncorrected test; of a confirmed
    case, the test that gave it its p-value (``drivers``) shows the regression, the other not."""
    text = f"{r['name']}: observed {r['observed']}; required {r['threshold']}; {r['bound']}"
    if r["kind"] not in REGRESSION_KINDS:
        return r["outcome"], text
    if baseline is not None and baseline == policy:
        return "NOT COMPARED", f"{r['name']}: {policy} is the baseline: not compared"
    if cid not in (family.get("p_values") or {}):
        return "NOT JUDGED", f"{text} (informational: not in the candidate's regression family)"
    confirmed = cid in (family.get("confirmed") or [])
    if confirmed and r["kind"] not in drivers:
        return "PASS", f"{text}; not shown by this test (the case is a regression confirmed through its other test)"
    return ("FAIL" if confirmed else "PASS"), f"{text}; {_family_phrase(cid, family, confirmed)}"


def decision_html(state: CaseState) -> str:
    """The case page's first block: the decision, then each requirement as decided. Plain lists:
    Allure 2 flattens a table's cells into one run of text."""
    e = html.escape
    head = {"pass": f"PASS: nothing here blocks {state.policy}",
            "informational": "informational (gate: false): shown, never blocking"}.get(
        state.reason, f"{REASONS[state.reason]} of {state.policy}")
    lines = "".join(f"<li><b>{e(v)}</b> {e(t)}</li>" for v, t in state.items)
    return f"<p><b>{e(head)}</b></p>" + (f"<ul>{lines}</ul>" if lines else "")


def candidate_lines(policy: str, candidate: dict) -> list[str]:
    """One line per finding that decides the candidate (what blocks it, what was not evaluated)."""
    return list(candidate.get("blocking", [])) + list(candidate.get("not_evaluated", []))
