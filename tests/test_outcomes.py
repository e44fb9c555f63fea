"""The four outcomes of a gate run (PASS 0, FAIL 1, INCONCLUSIVE 2, INVALID 3): how each finding
decides a candidate and the run, and, end to end through `pytest suites/`, that the exit code,
the terminal's last line, verdict.json and JUnit say the same one."""

import json
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from simgate.reporting.promotion import EXIT_CODES, outcome_line, verdict_document
from tests.test_end_to_end import gate


def requirement(kind="success_rate", outcome="PASS", name=None):
    return {"kind": kind, "name": name or kind.replace("_", " "), "outcome": outcome, "observed": "x", "bound": "",
            "threshold": "", "numbers": {}}


def record(*requirements, outcome=None, status="ok", modes=None, error=None):
    worst = outcome or next((r["outcome"] for r in requirements if r["outcome"] != "PASS"), "PASS")
    return {"outcome": worst, "status": status, "episodes": 20, "failure_modes": modes or {}, "error": error,
            "requirements": list(requirements)}


def decide(records: dict, gates=None, run=None):
    cases = {cid: SimpleNamespace(policy=cid.split(":")[0], gate=(gates or {}).get(cid, True), alpha=0.05)
             for cid in records}
    return verdict_document(records, cases, run or {"complete": True, "id": "r"})


@pytest.mark.parametrize("records, expected", [
    ({"a:1": record(requirement())}, "PASS"),
    ({"a:1": record(requirement(outcome="FAIL"))}, "FAIL"),
    ({"a:1": record(requirement(outcome="INCONCLUSIVE"))}, "INCONCLUSIVE"),
    # the gravest finding decides: a FAIL is not softened by an INCONCLUSIVE beside it
    ({"a:1": record(requirement(outcome="INCONCLUSIVE")), "a:2": record(requirement(outcome="FAIL"))}, "FAIL"),
    # episodes that do not repeat are no evidence, whatever else the case found
    ({"a:1": record(requirement(), requirement("determinism", "FAIL"))}, "INVALID"),
    ({"a:1": record(requirement(outcome="FAIL")), "a:2": record(requirement("determinism", "FAIL"))}, "INVALID"),
    # a crash (a worker killed) or a case that could not run left no evidence
    ({"a:1": record(outcome="ERROR", status="crashed", error="worker crashed")}, "INVALID"),
    ({"a:1": record(outcome="ERROR", status="error", error="ctl/share is a link")}, "INVALID"),
    # a policy that hung is the candidate's own failure
    ({"a:1": record(outcome="ERROR", status="error", modes={"policy_error": 20}, error="timeout")}, "FAIL"),
])
def test_each_finding_gives_its_outcome_and_the_gravest_decides(records, expected):
    verdict = decide(records)
    assert verdict["decision"] == expected and verdict["candidates"]["a"]["outcome"] == expected
    assert verdict["exit_code"] == EXIT_CODES[expected] and verdict["promote"] is (expected == "PASS")


def test_informational_cases_decide_nothing_but_a_crash_or_nondeterminism_there_still_invalidates():
    gates = {"a:info": False}
    assert decide({"a:1": record(requirement()), "a:info": record(requirement(outcome="FAIL"))}, gates)["decision"] == "PASS"
    crashed = record(outcome="ERROR", status="crashed", error="worker crashed")
    assert decide({"a:1": record(requirement()), "a:info": crashed}, gates)["decision"] == "INVALID"
    unrepeatable = record(requirement("determinism", "FAIL"))
    assert decide({"a:1": record(requirement()), "a:info": unrepeatable}, gates)["decision"] == "INVALID"


def test_the_run_takes_the_gravest_candidate_and_an_incomplete_or_empty_run_is_invalid():
    mixed = decide({"a:1": record(requirement()), "b:1": record(requirement(outcome="INCONCLUSIVE"))})
    assert mixed["decision"] == "INCONCLUSIVE" and mixed["candidates"]["a"]["promote"]
    assert outcome_line(mixed) == "simgate: INCONCLUSIVE (exit 2): a PASS, b INCONCLUSIVE"
    partial = decide({"a:1": record(requirement())},
                     run={"complete": False, "id": "r", "deselected": ["a:2"], "missing": [], "interrupted": False})
    assert partial["decision"] == "INVALID" and partial["exit_code"] == 3
    assert partial["candidates"]["a"]["outcome"] == "INVALID" and not partial["candidates"]["a"]["promote"]
    assert outcome_line(partial).startswith("simgate: INVALID (exit 3): incomplete run, 1 case(s) not selected")
    assert decide({})["decision"] == "INVALID"  # nothing judged is never a PASS


SCANT = """\
name: scant
env: balancebot
episodes: 4
horizon: 6.0
seed: 3
thresholds:
  min_success_rate: 0.9
"""


def test_too_few_episodes_end_inconclusive_with_exit_2_everywhere(tmp_path):
    """4 of 4 episodes succeed, which cannot show a rate of 0.9 (the one-sided 95 % bound is
    about 0.47): not a PASS, not a FAIL, but INCONCLUSIVE, and every output says so."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "scant.yaml").write_text(SCANT)
    junit = tmp_path / "junit.xml"
    run = gate("-n", "2", "--scenarios", str(scenarios), "--simgate-reports", str(tmp_path / "reports"),
               "--policy", "balancebot-lqr", "--baseline", "none", "--simgate-cache", "none", "--junitxml", str(junit))
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-2000:]
    verdict = json.loads((tmp_path / "reports" / "verdict.json").read_text())
    assert verdict["decision"] == "INCONCLUSIVE" and verdict["exit_code"] == 2 and verdict["complete"]
    assert run.stdout.rstrip().splitlines()[-1] == "simgate: INCONCLUSIVE (exit 2): balancebot-lqr INCONCLUSIVE"
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert properties["simgate.outcome"] == "INCONCLUSIVE" and properties["simgate.exit_code"] == "2"


def test_a_confirmed_regression_is_shown_by_the_test_that_confirmed_it_not_by_both():
    """A case confirmed by its success test (McNemar) does not mark its torque test FAIL: the torque
    went down, and the verdict and the report say so (one reading: promotion.case_drivers)."""
    from simgate.reporting.final import case_states

    success = {**requirement("not_worse"), "numbers": {"baseline": "base", "p_worse": 1e-6}}
    torque = {**requirement("torque_vs_baseline"), "numbers": {"baseline": "base", "joints": {
        "knee": {"p_regression": 0.9, "relative": -0.04}, "hip": {"p_regression": 1.0, "relative": -0.02}}}}
    records = {"a:1": record(requirement(), success, torque)}
    verdict = decide(records)
    entries = {r["kind"]: r for r in verdict["candidates"]["a"]["requirements"]}
    assert verdict["decision"] == "FAIL" and verdict["candidates"]["a"]["regression_alarms"] == ["a:1"]
    assert entries["not_worse"]["outcome"] == "FAIL" and entries["not_worse"]["finding"] == "regression (Holm-confirmed)"
    assert entries["torque_vs_baseline"]["outcome"] == "PASS"
    assert entries["torque_vs_baseline"]["finding"].startswith("not shown (the case is confirmed through its other test)")
    cases = {"a:1": SimpleNamespace(policy="a", gate=True, baseline="base", alpha=0.05)}
    items = dict((text.split(":")[0], verdict_) for verdict_, text in case_states(records, cases, verdict)["a:1"].items)
    assert items["not worse"] == "FAIL" and items["torque vs baseline"] == "PASS"


def test_a_case_whose_episodes_do_not_repeat_is_broken_in_the_report_gating_or_not():
    from simgate.reporting.allure import categories
    from simgate.reporting.final import case_states

    records = {"a:1": record(requirement(), requirement("determinism", "FAIL")),
               "a:info": record(requirement(), requirement("determinism", "FAIL"))}
    verdict = decide(records, gates={"a:info": False})
    cases = {cid: SimpleNamespace(policy="a", gate=cid != "a:info", baseline=None, alpha=0.05) for cid in records}
    states = case_states(records, cases, verdict)
    assert verdict["decision"] == "INVALID"
    for cid in records:
        assert states[cid].status == "broken" and states[cid].headline.startswith(
            "BLOCKS promotion · the episodes do not repeat (INVALID)"), states[cid].headline
    import re

    matching = [c["name"] for c in categories(records)
                if re.fullmatch(c["messageRegex"], states["a:1"].headline) and "broken" in c["matchedStatuses"]]
    assert matching == ["Blocks promotion: the episodes do not repeat (INVALID) · none"]
