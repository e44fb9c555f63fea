"""The promotion verdict as a test item: a candidate blocked by a finding no failed case item
shows (a Holm-confirmed regression against the baseline) fails `simgate::promotion[<candidate>]`,
so JUnit XML, Allure and CI dashboards see the blocking, not only the exit code."""

import xml.etree.ElementTree as ET

from simgate.controller import promotion_reasons
from tests.test_end_to_end import REPO, gate, only


def test_a_regression_alarm_fails_a_promotion_item_in_junit(tmp_path):
    pushes = only(tmp_path / "scenarios", "pushes.yaml", source=REPO / "scenarios")
    junit = tmp_path / "junit.xml"
    run = gate("-n", "2", "--scenarios", str(pushes), "--simgate-reports", str(tmp_path / "reports"),
               "--policy", "balancebot-lqr-sluggish", "--baseline", "balancebot-lqr", f"--junitxml={junit}")
    assert run.returncode == 1, run.stdout[-3000:]
    cases = {(c.get("classname"), c.get("name")): c for c in ET.parse(junit).iter("testcase")}
    promotion = cases[("simgate", "promotion[balancebot-lqr-sluggish]")]
    [failure] = promotion.findall("failure")
    text = failure.get("message") + (failure.text or "")
    # push_n=5 passes its own item; only the promotion item shows its Holm-confirmed regression
    assert "pushes-push_n=5-balancebot-lqr-sluggish: worse than the baseline" in text
    assert "Holm-confirmed" in text
    assert "success rate FAIL" not in text  # the failed push_n=10 item already shows that
    five = cases[("suites.test_scenarios", "test_scenario[pushes-push_n=5-balancebot-lqr-sluggish]")]
    assert not five.findall("failure") and not five.findall("error")
    assert "FAILED simgate::promotion[balancebot-lqr-sluggish]" in run.stdout
    assert "2 failed, 1 passed" in run.stdout


def test_only_what_no_failed_item_shows_is_a_promotion_reason():
    findings = [{"case": "a", "kind": "requirement", "text": "success rate FAIL (1/10 (10.0%))"},
                {"case": "a", "kind": "regression", "text": "worse than the baseline (case p=0.001, Holm-confirmed ...)"},
                {"case": "b", "kind": "regression", "text": "worse than the baseline (case p=0.01, Holm-confirmed ...)"},
                {"case": "c", "kind": "error", "text": "crash: worker died (an informational case's item xfails)"}]
    assert promotion_reasons({"findings": findings}, failed_cases={"a"}) == [
        f"{f['case']}: {f['text']}" for f in findings[1:]]
    assert promotion_reasons({"findings": findings[:1]}, {"a"}) == []
    assert promotion_reasons({"findings": []}, set()) == []
