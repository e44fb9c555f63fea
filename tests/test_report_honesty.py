"""The report never contradicts verdict.json: one real run with a confirmed regression whose case
passes its own requirements, informational failures, an INCONCLUSIVE search with a failing
episode inside its envelope and a search with a counterexample; its Allure results (and, where
the Allure generator is installed, the generated report's data) read back against summary.json
and verdict.json."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_end_to_end import REPO, gate

SCENARIOS = REPO / "tests" / "data" / "report_honesty"
CANDIDATE, BASELINE = "balancebot-lqr-degraded", "balancebot-lqr"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("honesty")
    proc = gate("-n", "2", "--scenarios", str(SCENARIOS), "--simgate-reports", str(root / "reports"),
                "--alluredir", str(root / "results"), "--policy", BASELINE, "--policy", CANDIDATE,
                "--baseline", BASELINE, "--simgate-cache", "none")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = root / "reports"
    results = [json.loads(p.read_text()) for p in sorted((root / "results").glob("*-result.json"))]
    return {"root": root, "summary": json.loads((reports / "summary.json").read_text()),
            "verdict": json.loads((reports / "verdict.json").read_text()), "results": results,
            "categories": json.loads((root / "results" / "categories.json").read_text())}


def label(result, name):
    return next((lb["value"] for lb in result["labels"] if lb["name"] == name), None)


def case_results(run):
    return {label(r, "simgate_case"): r for r in run["results"] if label(r, "simgate_case")}


def expected_status(cid, case, verdict):
    """What verdict.json says about a case, read independently of the code under test."""
    findings = [f for c in verdict["candidates"].values() for f in c["findings"] if f["case"] == cid]
    if not case["case"]["gate"] and not any(f["kind"] in ("error", "nondeterminism") for f in findings):
        return "skipped"
    if not findings:
        return "passed"
    if any(f["kind"] == "regression" for f in findings) or any(
            r["outcome"] == "FAIL" for r in case["requirements"] if "vs" not in r["name"] and "not worse" not in r["name"]):
        return "failed"
    return "broken"


def test_the_run_has_what_the_check_needs(run):
    cases, verdict = run["summary"]["cases"], run["verdict"]
    regress = cases[f"regress-{CANDIDATE}"]
    assert regress["outcome"] == "PASS"  # its own requirements pass ...
    assert f"regress-{CANDIDATE}" in verdict["candidates"][CANDIDATE]["regression_alarms"]  # ... the family blocks it
    assert cases[f"info-{CANDIDATE}"]["outcome"] == "FAIL" and not cases[f"info-{CANDIDATE}"]["case"]["gate"]
    probe = cases[f"probe-{BASELINE}"]["search"]
    assert probe["certificate"]["status"] == "INCONCLUSIVE" and probe["counterexamples"]
    assert cases[f"probe-{CANDIDATE}"]["search"]["counterexamples"]
    assert verdict["candidates"][BASELINE]["promote"] and not verdict["candidates"][CANDIDATE]["promote"]


def test_every_case_result_has_the_status_verdict_json_gives_it(run):
    by_case = case_results(run)
    assert set(by_case) == set(run["summary"]["cases"])  # one result per case, none lost, none extra
    for cid, case in run["summary"]["cases"].items():
        assert by_case[cid]["status"] == expected_status(cid, case, run["verdict"]), cid


def test_a_confirmed_regression_shows_the_familys_decision_on_its_page(run):
    page = case_results(run)[f"regress-{CANDIDATE}"]
    family = run["verdict"]["candidates"][CANDIDATE]["families"]["regression"]
    assert page["status"] == "failed"
    assert page["statusDetails"]["message"].startswith("BLOCKS promotion · regression against the baseline "
                                                       "(confirmed by the family) · timeout")  # its episodes' mode
    text = page["descriptionHtml"]
    assert "regression confirmed by the candidate&#x27;s family" in text and f"level {family['level']:g}" in text
    assert f"p = {family['p_values'][f'regress-{CANDIDATE}']:.3g}" in text
    [row] = [line for line in re.findall(r"<li>(.*?)</li>", text) if line.startswith("<b>FAIL</b> not worse than")]
    assert "judged by the family" not in text  # the provisional block was replaced
    # the baseline judged against itself says so instead of "PASS, 100 % vs 100 %"
    own = case_results(run)[f"regress-{BASELINE}"]["descriptionHtml"]
    assert f"{BASELINE} is the baseline: not compared" in own and "<b>PASS</b> not worse than" not in own


def test_each_blocking_case_is_under_exactly_one_category_and_the_counts_match_the_verdict(run):
    counts = {}
    for r in run["results"]:
        message = r["statusDetails"]["message"]
        matched = [c["name"] for c in run["categories"]
                   if r["status"] in c["matchedStatuses"] and re.fullmatch(c["messageRegex"], message)]
        if r["status"] in ("failed", "broken"):
            assert len(matched) == 1, (r["name"], message, matched)
        assert len(matched) <= 1
        for name in matched:  # "<why it blocks> · <the mode it is filed under>"
            counts[name.split(" · ")[0]] = counts.get(name.split(" · ")[0], 0) + 1
    verdict = run["verdict"]
    regressions = sum(len(c["regression_alarms"]) for c in verdict["candidates"].values())
    assert counts.get("Blocks promotion: regression against the baseline (confirmed by the family)", 0) == regressions
    blocked = sum(not c["promote"] for c in verdict["candidates"].values())
    assert counts.get("Promotion decision: not promotable", 0) == blocked
    informational = sum(1 for c in run["summary"]["cases"].values() if not c["case"]["gate"] and c["outcome"] != "PASS")
    assert counts.get("Informational (gate: false): did not pass", 0) == informational


def test_the_headline_counts_are_the_decisions(run):
    statuses = [r["status"] for r in run["results"]]
    verdict, cases = run["verdict"], run["summary"]["cases"]
    assert len(statuses) == len(cases) + len(verdict["candidates"])  # cases and candidates, nothing else
    promoted = sum(c["promote"] for c in verdict["candidates"].values())
    clean = sum(1 for cid, c in cases.items() if expected_status(cid, c, verdict) == "passed")
    assert statuses.count("passed") == clean + promoted


def test_the_promoted_candidate_shows_nothing_red(run):
    for r in run["results"]:
        if label(r, "policy") != BASELINE:
            continue
        assert r["status"] not in ("failed", "broken"), r["name"]
        assert all(step["status"] not in ("failed", "broken") for step in r.get("steps", [])), r["name"]
    [promotion] = [r for r in run["results"] if r["name"].startswith(f"promotion: {BASELINE}:")]
    assert promotion["name"].endswith(": PASS") and promotion["status"] == "passed"


def test_counterexamples_are_steps_of_their_case_and_replay_anywhere(run):
    probe = case_results(run)[f"probe-{CANDIDATE}"]
    steps = [s for s in probe["steps"] if s["name"].startswith("counterexample")]
    assert steps and all(s["status"] == "skipped" for s in steps)  # an informational search's
    inconclusive = case_results(run)[f"probe-{BASELINE}"]
    assert [s for s in inconclusive["steps"] if s["name"].startswith("counterexample")]
    text = json.dumps(run["results"])
    assert "python -m simgate replay" in text and sys.executable not in text and str(Path(sys.executable).parent) not in text


def test_the_markdown_summary_says_the_verdict(run):
    out = subprocess.run([sys.executable, "-m", "simgate", "summary", "--markdown", "--reports",
                          str(run["root"] / "reports")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 1, out.stderr  # FAIL's exit code
    assert "## simgate: FAIL" in out.stdout
    assert f"| {BASELINE} | **PASS** | 0 |" in out.stdout and f"| {CANDIDATE} | **FAIL** | 1 |" in out.stdout
    assert f"| {CANDIDATE} | regress-{CANDIDATE} | regression |" in out.stdout


def _allure_generator():
    local = REPO / "reports" / ".allure" / "node_modules" / ".bin" / "allure"
    return str(local) if local.exists() else shutil.which("allure")


@pytest.mark.skipif(_allure_generator() is None, reason="the Allure 2 generator is not installed "
                    "(python -m simgate report installs it with npm)")
def test_the_generated_report_agrees_with_the_verdict(run, tmp_path):
    from simgate.cli.report import generate

    out = tmp_path / "report"
    generate(run["root"] / "results", out, REPO / "reports" / ".allure")  # as python -m simgate report runs it
    summary = json.loads((out / "widgets" / "summary.json").read_text())
    verdict = run["verdict"]
    assert summary["reportName"] == f"simgate: {BASELINE} PASS · {CANDIDATE} FAIL"
    assert summary["statistic"]["total"] == len(run["summary"]["cases"]) + len(verdict["candidates"])
    cases = [json.loads(p.read_text()) for p in (out / "data" / "test-cases").glob("*.json")]
    by_case = {label(c, "simgate_case"): c for c in cases if label(c, "simgate_case")}
    for cid, case in run["summary"]["cases"].items():
        assert by_case[cid]["status"] == expected_status(cid, case, verdict), cid
    categories = json.loads((out / "data" / "categories.json").read_text())
    names = {child["name"]: len(child.get("children", [])) for child in categories["children"]}
    assert names.get("Blocks promotion: regression against the baseline (confirmed by the family) · timeout") == 1
    assert "Product defects" not in names and "Test defects" not in names  # every red result has its reason
    timeline = (out / "data" / "timeline.json").read_text(encoding="utf-8")
    assert all(json.dumps(c["name"]) in timeline or c["name"] in timeline for c in cases)  # none dropped for want of host/thread
    # the blocked candidate's page links the case that blocks it
    [blocked] = [c for c in cases if c["name"] == f"promotion: {CANDIDATE}: FAIL"]
    assert f"<a href='#testresult/{by_case[f'regress-{CANDIDATE}']['uid']}'>" in blocked["descriptionHtml"]


def test_a_case_id_pytest_escapes_is_still_counted_under_xdist(tmp_path):
    """pytest writes a non-ASCII parameter id escaped into the node id; the xdist controller must
    still recognise the case, or the run is wrongly incomplete (the same run decides with -n 0)."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "grip.yaml").write_text(
        "name: grip\nenv: balancebot\nepisodes: 4\nhorizon: 1.0\nperturbations:\n  - kind: scale_friction\n"
        "    params: {sliding: 0.5}\nmatrix:\n  reibung_ü: {param: scale_friction.sliding, values: [0.5, 0.8]}\n"
        "thresholds:\n  max_mean_torque: {wheel: 5.0}\n", encoding="utf-8")
    proc = gate("-n", "2", "--scenarios", str(scenarios), "--simgate-reports", str(tmp_path / "reports"),
                "--policy", BASELINE, "--baseline", "none", "--simgate-cache", "none")
    verdict = json.loads((tmp_path / "reports" / "verdict.json").read_text())
    assert verdict["complete"] and not verdict["deselected"], proc.stdout[-2000:]
    assert verdict["decision"] == "PASS" and proc.returncode == 0
