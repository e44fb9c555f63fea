"""The search case's pictures and its Allure results (issue 17, section 5): each picture from a
realistic search dict and from one with missing pieces, the captions' wording, and the
counterexamples written as Allure results of their own."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from simgate.reporting import search_plots as sp  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
AXES = [{"name": "apply_pushes.force", "low": 0, "high": 30, "nominal": 0, "envelope": [0, 10], "unit": "N"},
        {"name": "delay_actions.delay_ms", "low": 0, "high": 60, "nominal": 0, "envelope": [0, 20], "unit": "ms"},
        {"name": "scale_friction.sliding", "low": 0.2, "high": 1.0, "nominal": 1.0, "envelope": None, "unit": "×"},
        {"name": "add_payload.fraction", "low": 0, "high": 0.5, "nominal": 0, "envelope": None, "unit": "of mass"}]


def _truth(U):
    """A policy that fails with push and latency, a little with low friction and payload."""
    return 1 / (1 + np.exp(-(7 - 9 * U[:, 0] - 5 * U[:, 1] + 3 * (U[:, 2] - 1) - 1.5 * U[:, 3])))


def confirmation(status: str, safe: tuple, failing: tuple) -> dict:
    """A confirmation record (simgate.search.run._confirm) from (x, successes, trials, status) per side."""
    sides = {name: {"x": x, "successes": k, "trials": n, "lower": 0.0, "upper": 1.0, "status": st}
             for name, (x, k, n, st) in (("safe", safe), ("failing", failing))}
    return {"status": status, "episodes": safe[2] + failing[2], **sides, "level": 0.05 / 9, "level_contradict": 0.05 / 18,
            "alpha": 0.05, "family": 3, "looks": 3, "margin": 1.0, "seeds": "disjoint: episode indices from 60,000,000"}


def search_dict() -> dict:
    from simgate.search.risk import RiskModel

    rng = np.random.default_rng(7)
    lows, highs = np.array([a["low"] for a in AXES], float), np.array([a["high"] for a in AXES], float)
    U = rng.random((300, 4))
    y = rng.random(300) < _truth(U)
    per_axis = {}
    for i, axis in enumerate(AXES):
        levels = np.linspace(axis["low"], axis["high"], 8)
        Ua = np.tile([0.0, 0.0, 1.0, 0.0], (8, 1))
        Ua[:, i] = (levels - lows[i]) / (highs[i] - lows[i])
        k = rng.binomial(40, _truth(Ua))
        per_axis[axis["name"]] = {"estimate": None, "low": None, "high": None, "status": "holds_everywhere",
                                  "levels": levels.tolist(), "successes": k.tolist(), "trials": [40] * 8}
    per_axis["apply_pushes.force"].update(estimate=13.2, low=12.6, high=13.9, status="crosses")
    per_axis["delay_actions.delay_ms"].update(estimate=44.0, low=39.0, high=None, status="crosses")
    per_axis["scale_friction.sliding"].update(estimate=0.31, low=0.25, high=0.36, status="crosses")
    per_axis["apply_pushes.force"]["confirmation"] = confirmation("confirmed", (11.3, 30, 30, "confirmed"), (15.2, 3, 30, "confirmed"))
    per_axis["delay_actions.delay_ms"]["confirmation"] = confirmation("unconfirmed", (34.0, 27, 28, "confirmed"),
                                                                      (60.0, 12, 17, "unconfirmed"))
    per_axis["scale_friction.sliding"]["confirmation"] = confirmation("contradicted", (0.47, 14, 30, "contradicted"),
                                                                      (0.2, 0, 10, "confirmed"))
    per_axis["add_payload.fraction"]["confirmation"] = {"status": "not applicable"}
    sens = {what: {"first": {a["name"]: [v, v - 0.05, v + 0.06] for a, v in zip(AXES, first)},
                   "total": {a["name"]: [v, v - 0.07, v + 0.08] for a, v in zip(AXES, total)}}
            for what, first, total in (("success", [0.2, 0.45, 0.08, 0.02], [0.3, 0.6, 0.12, 0.04]),
                                       ("torque", [0.1, 0.05, 0.02, 0.6], [0.15, 0.1, 0.05, 0.7]))}
    grid = [(f, d) for d in (0, 10, 20) for f in (0, 5, 10)]
    wins = [50, 49, 45, 50, 48, 40, 49, 44, 30]
    cert = {"status": "FAIL", "alpha": 0.05, "level": 0.0056,
            "points": [{"params": {"apply_pushes.force": f, "delay_actions.delay_ms": d}, "successes": s, "trials": 50,
                        "lower": max(0.0, s / 50 - 0.15), "upper": min(1.0, s / 50 + 0.08)} for (f, d), s in zip(grid, wins)]}
    return {"target": 0.75, "alpha": 0.05, "axes": AXES,
            "boundary": {"per_axis": per_axis,
                         "joint": {"model": RiskModel.fit(U, y).to_dict(), "points": (lows + U * (highs - lows)).tolist(),
                                   "success": y.tolist()}},
            "auc": 0.93, "auc_points": 400, "sensitivity": sens,
            "counterexamples": [{"params": {"apply_pushes.force": 9.1, "delay_actions.delay_ms": 12.0}, "index": 17,
                                 "mode": "fell", "shrunk_from": {"params": {"apply_pushes.force": 9.8,
                                                                            "delay_actions.delay_ms": 19.0}, "index": 17},
                                 "replay": "python -m simgate replay case 17 --params '{...}' --video"},
                                {"params": {"apply_pushes.force": 10.0}, "index": 3, "mode": "slipped"}],
            "certificate": cert,
            "episodes": {"boundary": 800, "joint": 1200, "heldout": 400, "sensitivity": 768, "certify": 450,
                         "counterexamples": 150, "total": 3768}}


def hollow_dict() -> dict:
    """What a search cut short (or an older writer) leaves: nulls and empty pieces everywhere."""
    return {"target": 0.75, "alpha": None, "axes": AXES[:2],
            "boundary": {"per_axis": {"apply_pushes.force": {"estimate": None, "low": None, "high": None, "status": None,
                                                             "levels": [], "successes": None, "trials": None},
                                      "delay_actions.delay_ms": {"estimate": 30.0, "low": None, "high": None,
                                                                 "status": "crosses", "levels": [0, 30, 60],
                                                                 "successes": [5, None, 0], "trials": [5, 0, 5]}},
                         "joint": {"model": {"kind": "something else"}, "points": [[1.0, 2.0], [3.0]], "success": [True]}},
            "auc": None, "auc_points": 0,
            "sensitivity": {"success": {"first": {"apply_pushes.force": [None, None, None]},
                                        "total": {"apply_pushes.force": [0.4, None, None]}}, "torque": None},
            "counterexamples": [{"params": None, "index": None, "mode": None}],
            "certificate": {"status": "INCONCLUSIVE", "points": [{"params": {}, "successes": None, "trials": None,
                                                                  "lower": None, "upper": None}]},
            "episodes": {"total": None}}


def test_every_picture_of_a_full_search_is_a_png():
    pictures = dict(sp.pictures(search_dict()))
    assert list(pictures) == ["search: failure boundary per axis", "search: 2-D map of the most sensitive axes",
                              "search: sensitivity (Sobol indices)", "search: envelope certificate"]
    assert all(body.startswith(PNG) and len(body) > 10_000 for body in pictures.values())


def test_boundary_has_a_panel_per_axis_captioned_with_its_statement():
    fig = sp.boundary_figure(search_dict())
    titles = [ax.get_title(loc="left").replace("\n", " ") for ax in fig.axes if ax.get_visible()]
    assert titles == ["success ≥ 0.75 holds up to 13.2 N with the other axes at nominal (95 % interval 12.6–13.9 N); "
                      "confirmed on 60 fresh episodes: ≥ 0.75 at 11.3 N and below it at 15.2 N",
                      "success ≥ 0.75 holds up to 44 ms with the other axes at nominal (95 % interval 39 ms to beyond 60 ms); "
                      "not confirmed on 45 fresh episodes (27/28 at 34 ms, 12/17 at 60 ms): the budget ran out first",
                      "success ≥ 0.75 holds down to 0.31 × with the other axes at nominal (95 % interval 0.25–0.36 ×); "
                      "contradicted on 40 fresh episodes: 14/30 at 0.47 ×, below 0.75 where it should hold",
                      "success ≥ 0.75 holds over the whole range, 0–0.5 of mass (no crossing)"]
    force = fig.axes[0]
    assert force.get_xlabel() == "apply_pushes.force (N)"
    # the crossing's interval and the envelope are shaded spans, the target a line at 0.75
    spans = [p.get_label() for p in force.patches]
    assert "crossing, 95 % interval" in spans and "operating envelope" in spans
    assert any(list(line.get_ydata()) == [0.75, 0.75] for line in force.lines)
    assert "risk model (others at nominal)" in [line.get_label() for line in force.lines]
    # the confirmation's fresh episodes are drawn apart from the levels the boundary was fitted on
    fresh = [c for c in force.containers if c.get_label().startswith("fresh seeds (the confirmation")]
    assert len(fresh) == 1 and list(fresh[0].lines[0].get_xdata()) == [11.3, 15.2]
    assert list(fresh[0].lines[0].get_ydata()) == [1.0, 0.1]


def test_captions_word_each_status():
    axis = AXES[0]
    assert sp.caption(axis, {"status": "fails_everywhere"}, 0.75) == (
        "success ≥ 0.75 fails over the whole range, 0–30 N (never reaches the target)")
    assert sp.caption(axis, {"status": "holds_everywhere"}, 0.8) == (
        "success ≥ 0.8 holds over the whole range, 0–30 N (no crossing)")
    assert sp.caption(axis, {"status": "crosses", "estimate": 5.0, "low": None, "high": None}, 0.75) == (
        "success ≥ 0.75 holds up to 5 N (interval not available); not confirmed on fresh seeds")
    assert sp.caption(axis, None, 0.75) == "no boundary estimated"


def test_a_boundary_reads_as_confirmed_only_when_its_confirmation_says_so():
    axis = AXES[0]
    entry = {"status": "crosses", "estimate": 11.3, "low": 10.8, "high": 11.7}

    def words(record):
        return sp.caption(axis, {**entry, "confirmation": record}, 0.75).split("; ", 1)[1]

    assert words(confirmation("confirmed", (9.9, 30, 30, "confirmed"), (12.6, 5, 30, "confirmed"))) == (
        "confirmed on 60 fresh episodes: ≥ 0.75 at 9.9 N and below it at 12.6 N")
    assert words(confirmation("contradicted", (9.9, 40, 40, "confirmed"), (12.6, 39, 40, "contradicted"))) == (
        "contradicted on 80 fresh episodes: 39/40 at 12.6 N, at least 0.75 where it should not")
    assert words(confirmation("unconfirmed", (9.9, 0, 0, "unconfirmed"), (12.6, 0, 0, "unconfirmed"))) == (
        "not confirmed: no episodes were left for it in the budget")
    assert words(confirmation("unconfirmed", (9.9, 20, 20, "unconfirmed"), (12.6, 0, 0, "unconfirmed"))) == (
        "not confirmed on 20 fresh episodes (20/20 at 9.9 N, no episodes at 12.6 N): the budget ran out first")
    for record in (None, {}, {"status": "not applicable"}, {"status": "something newer"}):
        assert words(record) == "not confirmed on fresh seeds"


def test_map_uses_the_two_most_sensitive_axes_and_draws_the_fitted_boundary():
    search = search_dict()
    assert sp.most_sensitive(search) == [1, 0]  # delay's total index 0.6 beats force's 0.3
    fig = sp.map_figure(search)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("delay_actions.delay_ms (ms)", "apply_pushes.force (N)")
    labels = ax.get_legend_handles_labels()[1]
    assert "fitted boundary p = 0.75" in labels and "operating envelope" in labels
    assert "counterexample (shrunk)" in labels
    assert any(label.startswith("sampled: failure") for label in labels)
    # the contour at the target is drawn from the model the dict carries
    from matplotlib.contour import ContourSet

    assert any(isinstance(c, ContourSet) and list(c.levels) == [0.75] for c in ax.collections)
    assert "AUC 0.93 on 400 held-out uniform points" in ax.get_title()


def test_map_without_a_usable_model_says_nothing_is_fitted_but_shows_the_points():
    search = search_dict()
    search["boundary"]["joint"]["model"] = None
    ax = sp.map_figure(search).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert not any(label.startswith("fitted boundary") for label in labels)
    assert any(label.startswith("sampled: success") for label in labels)


def test_sensitivity_has_both_orders_for_success_and_torque():
    fig = sp.sensitivity_figure(search_dict())
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["Sobol indices of success over episodes", "Sobol indices of mean |torque| over episodes"]
    widths = sorted(round(p.get_width(), 3) for p in panels[0].patches)
    assert widths == sorted([0.2, 0.45, 0.08, 0.02, 0.3, 0.6, 0.12, 0.04])


def test_certificate_colours_points_by_their_bounds():
    fig = sp.certificate_figure(search_dict())
    ax = fig.axes[0]
    assert ax.get_title().startswith("Envelope certificate: FAIL")
    # 9 points: those whose lower bound reaches 0.75 green, the one whose upper is below it red
    lower = next(c for c in ax.collections if c.get_label() == "lower bound (family-wise)")
    colours = [tuple(np.round(c[:3], 3)) for c in lower.get_facecolors()]
    from matplotlib.colors import to_rgb

    ok, bad = tuple(np.round(to_rgb(sp.OK), 3)), tuple(np.round(to_rgb(sp.BAD), 3))
    assert colours.count(ok) == 6 and colours.count(bad) == 1  # 45/50: lower 0.75, at the target


@pytest.mark.parametrize("search", [{}, {"axes": None, "boundary": None, "sensitivity": None, "certificate": None},
                                    {"axes": AXES[:1], "target": None}])
def test_nothing_to_draw_is_none_not_an_error(search):
    assert sp.boundary(search) is None and sp.search_map(search) is None
    assert sp.sensitivity(search) is None and sp.certificate(search) is None
    assert sp.pictures(search) == []
    assert sp.summary_lines(search)[-1] == "counterexamples inside the envelope: none found"


def test_hollow_search_draws_what_it_has():
    search = hollow_dict()
    pictures = dict(sp.pictures(search))
    assert set(pictures) == {"search: failure boundary per axis", "search: 2-D map of the most sensitive axes",
                             "search: sensitivity (Sobol indices)", "search: envelope certificate"}
    assert all(body.startswith(PNG) for body in pictures.values())
    lines = sp.summary_lines(search)
    assert "apply_pushes.force: boundary not estimated (no status)" in lines
    delay = next(line for line in lines if line.startswith("delay_actions.delay_ms: "))
    assert delay.endswith("(interval not available); not confirmed on fresh seeds")  # no confirmation in the dict
    assert "  nominal, episode ?: failed" in lines


def test_summary_lines_read_like_the_issue():
    lines = sp.summary_lines(search_dict())
    assert lines[0] == "envelope certificate: FAIL over 9 covering design points"
    assert ("apply_pushes.force: success ≥ 0.75 holds up to 13.2 N with the other axes at nominal (95 % interval 12.6–13.9 N); "
            "confirmed on 60 fresh episodes: ≥ 0.75 at 11.3 N and below it at 15.2 N") in lines
    assert "  apply_pushes.force=9.1 N, delay_actions.delay_ms=12 ms, episode 17: fell" in lines
    assert lines[-1].startswith("episodes: 3768 (boundary 800")


# -- Allure --------------------------------------------------------------------------------------
def _case(gate=True, require="holds_inside_envelope"):
    return SimpleNamespace(id="quadruped_search-quadruped-nominal", env="quadruped", scenario="quadruped_search",
                           policy="quadruped-nominal", gate=gate, search={"require": require} if require else {})


def _results(folder):
    return sorted((json.loads(p.read_text()) for p in folder.glob("*-result.json")), key=lambda r: r["name"])


def test_each_counterexample_is_a_step_of_its_case(tmp_path):
    """Steps, not results: the report's counts count decisions (cases, candidates)."""
    from simgate.reporting import allure

    steps = allure.counterexample_steps(tmp_path, _case(), search_dict())
    assert not list(tmp_path.glob("*-result.json"))
    assert [s["name"] for s in steps] == [
        "counterexample: apply_pushes.force=9.1 N, delay_actions.delay_ms=12 ms, episode 17",
        "counterexample: apply_pushes.force=10 N, episode 3"]
    first = steps[0]
    assert first["status"] == "failed"  # the case gates on the envelope and its certificate FAILed
    assert first["message"] == "counterexample · primary failure mode: fell"
    assert ("apply_pushes.force", "9.1 N") in first["parameters"] and ("episode", "17") in first["parameters"]
    assert [a["name"] for a in first["attachments"]] == ["replay", "counterexample.json"]
    replay = (tmp_path / first["attachments"][0]["source"]).read_text()
    assert "replay: python -m simgate replay case 17" in replay and "shrunk toward nominal from" in replay


def test_counterexamples_are_informational_without_the_envelope_requirement_and_examples_where_certified(tmp_path):
    from simgate.reporting import allure

    for folder, case in (("a", _case(require=None)), ("b", _case(gate=False))):
        steps = allure.counterexample_steps(tmp_path / folder, case, search_dict())
        assert {s["status"] for s in steps} == {"skipped"}
        assert all(s["name"].startswith("counterexample (informational): ") for s in steps)
    certified = search_dict()
    certified["certificate"]["status"] = "PASS"  # a failing episode where the certified rate allows failures
    steps = allure.counterexample_steps(tmp_path / "c", _case(), certified)
    assert {s["status"] for s in steps} == {"skipped"} and all(s["name"].startswith("example: ") for s in steps)


def test_counterexample_files_are_the_same_on_a_rerun(tmp_path):
    from simgate.reporting import allure

    allure.counterexample_steps(tmp_path, _case(), search_dict())
    first = sorted(p.name for p in tmp_path.iterdir())
    allure.counterexample_steps(tmp_path, _case(), search_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == first and len(first) == 2 * 2


class _FakeAllure:
    """The slice of allure's API that _report_search uses, recording every attachment."""

    attachment_type = SimpleNamespace(PNG="png", TEXT="text", JSON="json")

    def __init__(self):
        self.attached = []

    def attach(self, body, name, attachment_type):
        self.attached.append((name, attachment_type, body))


def test_a_search_case_gets_its_pictures_summary_and_counterexamples(tmp_path, monkeypatch):
    from simgate.reporting import allure

    monkeypatch.setattr(allure, "results_dir", lambda: tmp_path)
    monkeypatch.setitem(allure._PENDING, _case().id, {"steps": []})
    fake = _FakeAllure()
    result = SimpleNamespace(case=_case(), search=search_dict())
    allure._report_search(fake, result, result.search, host=None)
    assert [(n, t) for n, t, _ in fake.attached] == [
        ("search: failure boundary per axis", "png"), ("search: 2-D map of the most sensitive axes", "png"),
        ("search: sensitivity (Sobol indices)", "png"), ("search: envelope certificate", "png"),
        ("search summary", "text"), ("search.json", "json")]
    assert json.loads(fake.attached[-1][2]) == json.loads(json.dumps(result.search))
    assert len(allure._PENDING[_case().id]["steps"]) == 2 and not _results(tmp_path)
    html = allure.search_html(result.search)
    assert "holds up to 13.2 N with the other axes at nominal (95 % interval 12.6–13.9 N)" in html and "envelope certificate: FAIL" in html


def test_the_promotion_overview_has_a_line_per_search_case():
    from simgate.reporting import overview

    search = search_dict()
    results = {"a": {"case": {"id": "quadruped_search-quadruped-nominal", "policy": "quadruped-nominal", "gate": True},
                     "outcome": "FAIL", "search": search},
               "b": {"case": {"id": "flat-quadruped-nominal", "policy": "quadruped-nominal"}, "outcome": "PASS"}}
    assert overview.search_lines(results) == [
        "quadruped_search · quadruped-nominal: envelope FAIL, 2 counterexample(s), AUC 0.93, 3768 episodes"]
    page = overview.overview_html(results, {"decision": "FAIL"}, charts={})
    assert "Searches: the operating envelope" in page
    assert "apply_pushes.force=9.1 N, delay_actions.delay_ms=12 ms, episode 17 (fell)" in page
    assert ("holds up to 13.2 N with the other axes at nominal (95 % interval 12.6–13.9 N); confirmed on 60 fresh "
            "episodes: ≥ 0.75 at 11.3 N and below it at 15.2 N") in page
    assert "contradicted on 40 fresh episodes: 14/30 at 0.47 ×, below 0.75 where it should hold" in page
    assert "envelope FAIL" in overview.description_html(results, {"decision": "FAIL"})


def test_a_counterexample_is_named_by_what_moved_and_reported_once(tmp_path):
    from simgate.reporting import allure

    search = search_dict()
    row = {"params": {a["name"]: a["nominal"] for a in AXES} | {"delay_actions.delay_ms": 10.0}, "index": 0,
           "mode": "slipped"}
    search["counterexamples"] = [row, dict(row), dict(row, index=4)]
    assert [sp.counterexample_title(c, AXES) for c in sp.counterexamples_of(search)] == [
        "delay_actions.delay_ms=10 ms (others nominal), episode 0",
        "delay_actions.delay_ms=10 ms (others nominal), episode 4"]
    steps = allure.counterexample_steps(tmp_path, _case(), search)
    assert [s["name"] for s in steps] == [
        "counterexample: delay_actions.delay_ms=10 ms (others nominal), episode 0",
        "counterexample: delay_actions.delay_ms=10 ms (others nominal), episode 4"]
    # every axis is still a parameter of the step
    assert {name for name, _ in steps[0]["parameters"]} >= {a["name"] for a in AXES}


def test_a_search_case_whose_episodes_all_succeeded_is_filed_under_its_counterexamples_mode():
    import re

    from simgate.reporting import allure
    from simgate.reporting.final import case_states

    record = {"case": {"id": "s", "policy": "p", "gate": True}, "outcome": "FAIL", "episodes": 50, "failure_modes": {},
              "search": search_dict(), "requirements": [
                  {"kind": "holds_inside_envelope", "name": "holds inside envelope", "outcome": "FAIL", "observed": "x",
                   "threshold": "y", "bound": "z", "numbers": {}}]}
    verdict = {"candidates": {"p": {"findings": [{"case": "s", "kind": "requirement", "text": "holds inside envelope FAIL"}]}}}
    line = case_states({"s": record}, {}, verdict)["s"].headline
    assert line.startswith("BLOCKS promotion · requirement not met · fell · holds inside envelope: FAIL")
    [cat] = [c for c in allure.categories({}) if "failed" in c["matchedStatuses"] and re.fullmatch(c["messageRegex"], line)]
    assert cat["name"] == "Blocks promotion: requirement not met · fell"


def test_certificate_ticks_name_only_the_params_that_vary_over_the_design():
    search = search_dict()
    for point in search["certificate"]["points"]:
        point["params"]["scale_friction.sliding"] = 1.0  # at nominal at every point
    ticks = [t.get_text() for t in sp.certificate_figure(search).axes[0].get_xticklabels()]
    assert ticks[0] == "force=0 N\ndelay_ms=0 ms\n50/50" and not any("sliding" in t for t in ticks)


def test_search_words_follow_the_measurements():
    """An INCONCLUSIVE certificate whose point measured below the target does not ask for more
    episodes as if PASS were near; torque Sobol bars from a few base points are not drawn; the
    AUC says what it measures."""
    points = [{"successes": 69, "trials": 102}, {"successes": 100, "trials": 102}]
    assert sp.inconclusive_words(points, 0.75).startswith("1 point(s) measured below the target (worst 69/102)")
    assert "more episodes could show PASS" in sp.inconclusive_words([{"successes": 80, "trials": 100}], 0.75)
    search = search_dict()
    search["sensitivity"]["torque"] = {"first": {a["name"]: [0.4, -0.3, 1.1] for a in AXES},
                                       "total": {a["name"]: [0.5, -0.2, 1.2] for a in AXES}, "n": 16}
    fig = sp.sensitivity_figure(search)
    assert len(fig.axes) == 1 and "torque: not shown" in fig._suptitle.get_text()
    assert any("not how robust the policy is" in line for line in sp.summary_lines(search))


def test_failing_episodes_where_the_certificate_passes_are_examples_in_the_text_and_the_map():
    search = search_dict()
    search["certificate"] = {**(search.get("certificate") or {}), "status": "PASS"}
    lines = sp.summary_lines(search)
    assert any(line.startswith("failing episodes inside the envelope (examples: the certificate passes there)")
               for line in lines) and not any(line.startswith("counterexamples inside") for line in lines)
    labels = sp.map_figure(search).axes[0].get_legend_handles_labels()[1]
    assert "example (shrunk; the certificate passes here)" in labels and "counterexample (shrunk)" not in labels


def test_the_candidates_boundaries_say_which_held_up_on_fresh_seeds():
    from simgate.reporting import compare

    search = search_dict()
    results = {p: {"case": {"scenario": "quadruped_search", "policy": p}, "search": search} for p in ("a", "b")}
    rows = compare.boundary_rows(results)["quadruped_search"]
    assert [r["confirmation"] for r in rows["apply_pushes.force"]] == ["confirmed", "confirmed"]
    fig = compare.boundaries_figure("quadruped_search", rows)
    words = [[t.get_text() for t in ax.texts] for ax in fig.axes]
    assert words[:3] == [["confirmed on fresh seeds"] * 2, ["not confirmed on fresh seeds"] * 2,
                         ["contradicted on fresh seeds"] * 2]
