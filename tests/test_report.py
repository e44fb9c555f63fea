"""The report tells the truth at a glance: informational failures filed under their failure mode,
one promotion overview (no robustness curve counted as a passed test), charts that draw the
limit and the bound the verdict used, and a video in which the robot is big enough to see."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from simgate.runner import CaseResult
from simgate.scenarios.case import Case
from simgate.verdict import Requirement

REPO = Path(__file__).resolve().parents[1]


def case(policy="quadruped-nominal", gate=True, scenario="quadruped_slippery_sensitivity", point=None, baseline=None):
    point = {"friction": 0.03} if point is None else point
    suffix = "".join(f"-{k}={v}" for k, v in point.items())
    return Case(id=f"{scenario}{suffix}-{policy}", scenario=scenario, source="scenarios/x.yaml", env="quadruped",
                policy=policy, point=point, perturbations=({"kind": "scale_friction", "params": {"sliding": 0.03}},),
                episodes=50, horizon=6.0, seed=1, alpha=0.05, determinism_episodes=0,
                thresholds={"min_success_rate": 0.7}, gate=gate, baseline=baseline)


def success(k, n, p0=0.7):
    from simgate.verdict import success_requirement

    class Rollouts:  # the two things success_requirement reads
        def __init__(self):
            self.n = n

        def column(self, name):
            return np.array([1] * k + [0] * (n - k))

    return success_requirement(Rollouts(), p0, 0.05)


def result(c, k, n, modes, requirements=None):
    fell = [float(i % 5) if i < sum(modes.values()) else float("nan") for i in range(n)]
    primary = [m for m, count in modes.items() for _ in range(count)] + [None] * (n - sum(modes.values()))
    table = {"episode": list(range(n)), "failure_mode": primary, "time_to_fall": fell,
             "mean_abs_torque[FL_flexion]": list(np.linspace(0.9, 1.2, n)),
             "mean_abs_torque[FL_knee]": list(np.linspace(0.5, 0.7, n))}
    reqs = [success(k, n)] + list(requirements or [])
    from simgate.verdict import overall

    return CaseResult(c, overall(reqs), reqs, modes, {"mean_abs_torque[FL_flexion]": 1.05, "mean_abs_torque[FL_knee]": 0.6},
                      n, table=table, worst=0 if modes else None)


def torque_regression():
    """A torque finding as simgate records it: per joint a ratio test against (1 + share) x the
    baseline's mean; the requirement itself never fails the case (the controller judges it)."""
    joints = {"FL_flexion": {"n": 50, "mean_difference": 0.1417, "share": 0.1, "range": 3.0, "baseline_mean": 1.0,
                             "candidate_mean": 1.1417, "p_regression": 0.001, "p_not_higher": 1.0, "relative": 0.1417},
              "FL_knee": {"n": 50, "mean_difference": -0.01, "share": 0.1, "range": 3.0, "baseline_mean": 0.61,
                          "candidate_mean": 0.60, "p_regression": 0.9, "p_not_higher": 0.01, "relative": -0.016}}
    return Requirement("torque_vs_baseline", "mean |torque| vs quadruped-robust", "PASS",
                       "largest change +14.2%; smallest p of 'up by more than 10%': 0.001 at FL_flexion (uncorrected)",
                       "betting test", "each joint's increase < 10% of the baseline's",
                       {"joints": joints, "family": "regression", "p_value": 0.001, "share": 0.1})


def matched(categories, status, message):
    return [c["name"] for c in categories if status in c["matchedStatuses"] and re.fullmatch(c["messageRegex"], message)]


def test_each_case_is_filed_under_why_it_blocks_and_its_outcome_first_mode():
    """Categories are decisions: the reason a case blocks (or that it is informational), then the
    mode it is filed under, a fall first whatever rule named its episodes' primary mode."""
    from simgate.reporting.allure import categories
    from simgate.reporting.final import case_states

    info = result(case(gate=False), 24, 50, {"slipped": 26})
    gating = result(case(scenario="quadruped_pushes", point={}), 80, 150, {"saturated": 44, "fell": 26})
    records = {r.case.id: r.to_dict() for r in (info, gating)}
    cases = {r.case.id: r.case for r in (info, gating)}
    verdict = {"candidates": {"quadruped-nominal": {"findings": [
        {"case": gating.case.id, "kind": "requirement", "text": "success rate FAIL"}]}}}
    states = case_states(records, cases, verdict, falls={gating.case.id: 43})
    cats = categories(records)
    assert states[info.case.id].status == "skipped" and states[gating.case.id].status == "failed"
    assert matched(cats, "skipped", states[info.case.id].headline) == ["Informational (gate: false): did not pass · slipped"]
    # 43 of 150 fell, although 'saturated' is the primary mode of more of them: the fall is the outcome
    assert matched(cats, "failed", states[gating.case.id].headline) == ["Blocks promotion: requirement not met · fell"]
    assert "fell in 43 of 150 episodes" in states[gating.case.id].headline and "\n" not in states[gating.case.id].headline
    # the same case, passed by the verdict (no finding), is green whatever the worker thought
    assert case_states(records, cases, {"candidates": {}})[gating.case.id].status == "passed"


def test_a_confirmed_torque_regression_is_shown_where_its_case_passed(tmp_path):
    """The case passes its own requirements; the verdict's regression family confirms it: the
    overview marks its cell, names it under the candidate, and charts both policies' torque."""
    pytest.importorskip("matplotlib")
    from simgate.reporting import overview

    r = result(case(scenario="quadruped_turning", point={}), 100, 100, {}, [torque_regression()])
    assert r.outcome == "PASS"
    records = {r.case.id: r.to_dict()}
    verdict = {"decision": "FAIL", "complete": True, "candidates": {"quadruped-nominal": {
        "passed": False, "complete": True, "regression_alarms": [r.case.id],
        "blocking": [f"{r.case.id}: worse than the baseline (case p=0.002, Holm-confirmed)"]}}}
    charts = overview._charts(records, verdict)
    assert [name for name, _ in charts["baseline"]] == [f"torque: {r.case.id}"]
    page = overview.overview_html(records, verdict, charts)
    assert "regr.</b>" in page and "outline:3px" in page
    assert "more torque than quadruped-robust (+14.2% at FL_flexion)" in overview.story(
        "quadruped-nominal", records, overview.confirmed_regressions(verdict))
    fig = __import__("simgate.reporting.plots", fromlist=["x"]).torque_vs_baseline_figure(
        "quadruped_turning", torque_regression().numbers, {"FL_flexion": 1.1417, "FL_knee": 0.60}, "nominal",
        "robust", 0.05, True)
    [limit] = [c for c in fig.axes[0].collections if c.get_label().startswith("limit")]
    assert [seg[0][1] for seg in limit.get_segments()] == pytest.approx([1.1, 0.671])  # (1 + 10 %) x the baseline


def verdict_for(records):
    return {"decision": "FAIL", "promote": False, "complete": True, "run": "r1", "candidates": {
        "quadruped-nominal": {"promote": False, "passed": False, "complete": True, "outcome": "FAIL",
                              "blocking": ["quadruped_pushes-quadruped-nominal: success rate FAIL (103/150)"]},
        "quadruped-robust": {"promote": True, "passed": True, "complete": True, "outcome": "PASS", "blocking": []}}}


def test_one_result_per_candidate_states_its_decision_and_no_curve_counts_as_a_test(tmp_path):
    pytest.importorskip("matplotlib")
    from simgate.reporting.allure import reconcile

    records, cases = {}, {}
    for policy, ks in (("quadruped-nominal", (50, 48, 24)), ("quadruped-robust", (50, 49, 41))):
        for friction, k in zip((0.1, 0.05, 0.03), ks):
            modes = {"slipped": 50 - k} if k < 50 else {}
            r = result(case(policy=policy, gate=False, point={"friction": friction}), k, 50, modes)
            records[r.case.id], cases[r.case.id] = r.to_dict(), r.case
    reconcile(str(tmp_path), records, cases, verdict_for(records))
    written = {json.loads(p.read_text())["name"]: json.loads(p.read_text()) for p in tmp_path.glob("*-result.json")}
    # curves are pictures, not results: one result per candidate, its status the decision
    assert sorted(written) == ["promotion: quadruped-nominal: FAIL", "promotion: quadruped-robust: PASS"]
    nominal, robust = written["promotion: quadruped-nominal: FAIL"], written["promotion: quadruped-robust: PASS"]
    assert nominal["status"] == "failed" and robust["status"] == "passed"
    assert "quadruped_pushes-quadruped-nominal: success rate FAIL (103/150)" in nominal["statusDetails"]["trace"]
    names = [a["name"] for a in nominal["attachments"]]
    [attached] = [a for a in nominal["attachments"] if a["name"] == "promotion overview.html"]
    full = (tmp_path / attached["source"]).read_text()
    assert "FAIL</b> 24/50<br>slipped 26" in full  # the matrix cell, informational included
    assert "<b>slipped</b>" in full and "28 of 100" in full  # ranked: nominal slipped 2 + 26 in its 2 cases
    assert "robustness curve: quadruped_slippery_sensitivity over friction" in names
    env = (tmp_path / "environment.properties").read_text()
    assert "promotion=FAIL" in env and "promotion.quadruped-robust=PASS: may be promoted" in env
    # the report's name says each candidate's outcome: "FAIL" alone reads as "nothing may ship"
    assert json.loads((tmp_path / "executor.json").read_text())["reportName"] == \
        "simgate: quadruped-nominal FAIL · quadruped-robust PASS"


def test_the_robustness_curve_marks_a_point_below_the_requirement_as_failed_and_uses_one_sided_bounds():
    pytest.importorskip("matplotlib")
    from simgate import stats
    from simgate.reporting import plots

    points = {"nominal": [(0.1, 50, 50, "PASS"), (0.03, 24, 50, "FAIL")], "robust": [(0.1, 50, 50, "PASS"), (0.03, 41, 50, "PASS")]}
    fig = plots.robustness_figure("friction (× nominal)", points, 0.7, 0.05, "ice")
    ax = fig.axes[0]
    assert [line.get_ydata()[0] for line in ax.get_lines() if line.get_label().startswith("required")] == [0.7]
    colours = [tuple(np.round(c, 3)) for coll in ax.collections for c in coll.get_facecolors()]
    import matplotlib.colors as mc

    assert tuple(np.round(mc.to_rgba(plots.COLOURS["FAIL"]), 3)) in colours
    assert ax.get_ylabel() and ax.get_xlabel() == "friction (× nominal)"
    assert fig.get_size_inches()[0] * fig.dpi >= 800
    # 41/50 passes: its one-sided lower bound lies above 0.7 (a two-sided 95 % band would dip below)
    lower, _ = plots.one_sided_bounds(41, 50, 0.05)
    assert lower > 0.7 and stats.success_rate(41, 50, 0.7, 0.05).outcome == "PASS"
    plots.png(fig)


def test_the_torque_chart_draws_the_limit_and_the_baseline():
    pytest.importorskip("matplotlib")
    from simgate.reporting import plots

    r = result(case(scenario="quadruped_turning", point={}), 50, 50, {}, [torque_regression()])
    absolute = Requirement("mean_torque", "mean |torque| [FL_flexion]", "PASS", "1.05", "", "< 1.5",
                           {"outcome": "PASS", "mean": 1.05, "upper": 1.08, "lower": 1.02, "limit": 1.5, "n": 50})
    fig = plots.torque_figure(r.table, [absolute.to_dict(), torque_regression().to_dict()])
    ax = fig.axes[0]
    labelled = {c.get_label(): c for c in ax.collections}
    limit = labelled["limit (mean |τ|)"].get_segments()[0]
    assert limit[0][1] == 1.5
    allowed = labelled["baseline + allowed increase"].get_segments()[0][0][1]
    assert allowed == pytest.approx(1.0 * 1.1)  # the baseline's mean x (1 + share)
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_color() == "#c0392b"] == ["FL_flexion"]
    assert any(c.get_label().startswith("baseline quadruped-robust") for c in ax.collections)
    assert "N·m" in ax.get_ylabel()


def test_falls_and_failure_modes_add_up():
    pytest.importorskip("matplotlib")
    from simgate.reporting import plots

    table = {"failure_mode": ["fell", "saturated", "saturated", None], "time_to_fall": [1.0, 2.0, float("nan"), float("nan")]}
    fig = plots.time_to_fall_figure(table, 6.0)
    assert "2 of 4 episodes fell" in fig.axes[0].get_title()
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["fell (1)", "saturated (1)"]


VIDEO_CHECK = """
import json, sys
import numpy as np
from simgate.replay import choose_gl
choose_gl()  # before MuJoCo is imported: EGL or OSMesa
import mujoco
sys.path.insert(0, sys.argv[1])
from envs.quadruped.env import Quadruped
from simgate.reporting.video import View
env = Quadruped()
nominal = env.build_model()
view = View.open(env, nominal)
if view is None:
    print(json.dumps(None)); sys.exit(0)
data = mujoco.MjData(nominal)
env.reset(nominal, data, np.random.default_rng(0))
mujoco.mj_forward(nominal, data)
data.xfrc_applied[1, :3] = [0.0, 10.0, 0.0]
frame = view.frame(nominal, data)
top, bottom = view.robot_rows(nominal, data)
red = int(((frame[..., 0] > 180) & (frame[..., 1] < 60) & (frame[..., 2] < 60)).sum())
print(json.dumps({"shape": frame.shape, "rows": [top, bottom], "textures": [view.model.ntex, nominal.ntex], "red": red}))
view.close()
"""


def test_the_video_frames_the_quadruped():
    """One frame rendered in a fresh process (MuJoCo picks its GL backend when first imported)."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    run = subprocess.run([sys.executable, "-c", VIDEO_CHECK, str(REPO)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    if seen is None:
        pytest.skip("no OpenGL backend (apt-get install -y libegl1 libgl1-mesa-dri, or libosmesa6)")
    from simgate.reporting.video import HEIGHT, WIDTH

    assert seen["shape"] == [HEIGHT, WIDTH, 3]
    top, bottom = seen["rows"]
    assert bottom - top + 1 >= HEIGHT / 4, (top, bottom)  # the robot fills a quarter of the height or more
    assert seen["textures"][0] > seen["textures"][1]  # the checker floor and the sky were added
    assert seen["red"] > 500  # the push arrow


def test_readme_tables_are_generated_from_summaries(tmp_path):
    sys.path.insert(0, str(REPO / "docs"))
    import verdict_tables

    r = result(case(gate=False), 24, 50, {"slipped": 26})
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"cases": {r.case.id: r.to_dict()}}))
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- verdict table quadruped -->\nold\n<!-- end verdict table quadruped -->\ny\n")
    assert verdict_tables.main(["--write", str(readme), str(summary)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| `quadruped_slippery_sensitivity-friction=0.03` | FAIL (info) 24/50 (slipped 26) |" in text


def test_an_incomplete_or_missing_verdict_still_gives_a_decision(tmp_path):
    """The verdict document is read defensively: an incomplete run's, or none at all; neither passes."""
    from simgate.reporting.allure import write_candidates

    r = result(case(gate=False), 24, 50, {"slipped": 26})
    records = {r.case.id: r.to_dict()}
    incomplete = {"decision": "INVALID", "complete": False, "missing": ["x"], "candidates": {
        "quadruped-nominal": {"passed": True, "complete": True}}}
    [written] = write_candidates(tmp_path, records, incomplete)
    assert written["status"] == "broken" and written["name"] == "promotion: quadruped-nominal: INVALID"
    [none] = write_candidates(tmp_path / "none", records, None)
    assert none["status"] == "broken"


def test_paired_outcomes_count_the_episode_pairs_and_skip_the_baseline_itself():
    from simgate.reporting.compare import paired_rows

    def record(policy, k, n, n10, n01, gate=True):
        return {"case": {"id": f"c-{policy}", "policy": policy, "gate": gate}, "requirements": [
            {"kind": "success_rate", "numbers": {"k": k, "n": n}},
            {"kind": "not_worse", "numbers": {"baseline": "robust", "n": n, "n10": n10, "n01": n01}}]}

    results = {"a": record("nominal", 103, 150, 40, 5), "b": record("robust", 138, 150, 0, 0),
               "c": record("nominal", 10, 20, 1, 1, gate=False)}
    rows = paired_rows(results)
    assert list(rows) == [("nominal", "robust")]  # robust against itself says nothing; informational not charted
    [row] = rows[("nominal", "robust")]
    # 103 candidate successes = 98 both + 5 only the candidate; 40 lost; 7 pairs neither
    assert (row["both"], row["lost"], row["gained"], row["neither"]) == (98, 40, 5, 7)
    assert sum(row[k] for k in ("both", "lost", "gained", "neither")) == 150


def test_the_baseline_compared_with_itself_is_not_a_member_of_its_regression_family():
    from types import SimpleNamespace

    from simgate.reporting.promotion import verdict_document

    def record(policy, p_worse):
        return {"outcome": "PASS", "episodes": 50, "failure_modes": {}, "requirements": [
            {"kind": "not_worse", "name": f"not worse than robust", "outcome": "PASS", "observed": "", "bound": "",
             "threshold": "", "numbers": {"baseline": "robust", "p_worse": p_worse}}]}

    cases = {f"s{i}-{policy}": SimpleNamespace(policy=policy, gate=True, alpha=0.05)
             for i in range(3) for policy in ("robust", "nominal")}
    results = {cid: record(c.policy, 1.0 if c.policy == "robust" else 0.5) for cid, c in cases.items()}
    verdict = verdict_document(results, cases, {"complete": True, "id": "r"})
    assert verdict["candidates"]["robust"]["families"]["regression"]["size"] == 0
    assert verdict["candidates"]["nominal"]["families"]["regression"]["size"] == 3
