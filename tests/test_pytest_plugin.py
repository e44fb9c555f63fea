"""simgate's pytest glue in a foreign project that only installed simgate (pytest11 entry point):
its own plugin module, a gymnasium env by id, xdist, and a worker that crashes mid-case."""

import json
import textwrap

import numpy.fft  # noqa: F401 (imported before pytester's in-process runs, which drop what they import;
import pytest     # a C extension such as numpy.fft cannot be imported a second time in one process)

PLUGIN = """
from simgate.plugin_manager import hookimpl
from simgate.policies.spec import PolicySpec


@hookimpl
def simgate_register_policies(registry):
    for name in ("pd", "idle", "crasher"):
        registry.add(name, PolicySpec(name=name, env="InvertedPendulum-v5", format="scripted",
                                      entry=f"controllers:{name}", observation_size=4, action_size=1,
                                      manifest="myplugin.py"))
"""

CONTROLLERS = """
import os

import numpy as np


class _PD:
    def act(self, obs):
        x, th, xd, thd = obs[0]
        return np.array([[np.clip(1.0 * x + 20 * th + 1.5 * xd + 3 * thd, -3, 3)]])


class _Idle:
    def act(self, obs):
        return np.zeros((1, 1))


class _Crasher:
    def act(self, obs):
        os._exit(3)  # a segfaulting extension would look the same to xdist


def pd():
    return _PD()


def idle():
    return _Idle()


def crasher():
    return _Crasher()
"""

SCENARIO = """
name: balance
env: InvertedPendulum-v5
episodes: 20
horizon: 2.0
thresholds:
  min_success_rate: 0.8
"""


@pytest.fixture
def project(pytester: pytest.Pytester):
    pytester.makeconftest('simgate_plugins = ["myplugin"]\n')
    pytester.makepyfile(myplugin=PLUGIN, controllers=CONTROLLERS,
                        test_gate="def test_scenario(simgate_result):\n    simgate_result.check()\n")
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "balance.yaml").write_text(textwrap.dedent(SCENARIO))
    pytester.makeini("[pytest]\nsimgate_candidates =\n    pd\n    idle\n")
    return pytester


def test_cases_come_from_the_yaml_and_policies_from_the_plugin(project):
    result = project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_gate.py::test_scenario[[]balance-pd[]]",
                                 "test_gate.py::test_scenario[[]balance-idle[]]"])


def test_good_passes_idle_fails_with_reason_under_xdist(project):
    result = project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    # the group-sequential design (the default here) FAILs it at its first look, 10 of 20 episodes
    result.stdout.fnmatch_lines(["*balance-idle: FAIL*", "*success rate*FAIL*observed 0/10 (0.0%) at look 1 of 3*",
                                 "*failure modes (10 of 10 episodes): fell 10*"])
    summary = json.loads((project.path / "reports" / "summary.json").read_text())
    assert summary["totals"] == {"FAIL": 1, "PASS": 1}


def test_k_selects_cases(project):
    result = project.runpytest("-k", "balance-pd")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_crashing_worker_fails_its_case_only(project):
    result = project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--policy", "crasher", "--policy", "pd")
    result.assert_outcomes(passed=1, failed=1)
    summary = json.loads((project.path / "reports" / "summary.json").read_text())
    crashed = summary["cases"]["balance-crasher"]
    assert crashed["outcome"] == "ERROR" and crashed["failure_modes"] == {"crash": 1}
    assert summary["cases"]["balance-pd"]["outcome"] == "PASS"


def test_a_plugins_failure_mode_gets_its_own_allure_category(tmp_path):
    """The example plugin's 'stuck' (no core change) becomes a category as soon as a case reports it."""
    import json
    import re

    from simgate.reporting.allure import reconcile
    from simgate.reporting.final import case_states

    results = {"a": {"case": {"id": "a", "policy": "p", "gate": True}, "outcome": "FAIL", "episodes": 10,
                     "failure_modes": {"stuck": 3, "timeout": 1},
                     "requirements": [{"kind": "success_rate", "name": "success rate", "outcome": "FAIL",
                                       "observed": "6/10", "threshold": ">= 0.9", "bound": "exact", "numbers": {}}]}}
    verdict = {"candidates": {"p": {"findings": [{"case": "a", "kind": "requirement", "text": "success rate FAIL"}]}}}
    reconcile(str(tmp_path), results, {}, verdict)
    categories = {c["name"]: c for c in json.loads((tmp_path / "categories.json").read_text())}
    assert "Blocks promotion: requirement not met · stuck" in categories
    message = case_states(results, {}, verdict)["a"].headline
    matched = [name for name, c in categories.items() if "failed" in c["matchedStatuses"]
               and re.fullmatch(c["messageRegex"], message)]
    assert matched == ["Blocks promotion: requirement not met · stuck"]  # filed under its most frequent mode only


def test_scenario_files_are_tests_without_a_test_module(project):
    """`pytest scenarios/` in a repository that only has scenarios: the YAML file is the test
    module, with the same bracket ids a Python module requesting simgate_case gets."""
    (project.path / "test_gate.py").unlink()
    result = project.runpytest("--collect-only", "-q", "scenarios/")
    result.stdout.fnmatch_lines(["scenarios/balance.yaml::test_scenario[[]balance-pd[]]",
                                 "scenarios/balance.yaml::test_scenario[[]balance-idle[]]"])
    result = project.runpytest("-p", "no:cacheprovider", "--policy", "pd", "scenarios/")
    result.assert_outcomes(passed=1)
    summary = json.loads((project.path / "reports" / "summary.json").read_text())
    assert summary["cases"]["balance-pd"]["outcome"] == "PASS"


def test_a_case_is_collected_once_when_a_test_module_requests_it(project):
    result = project.runpytest("--collect-only", "-q", ".")
    ids = [line for line in result.outlines if "::test_scenario[" in line]
    assert sorted(ids) == ["test_gate.py::test_scenario[balance-idle]", "test_gate.py::test_scenario[balance-pd]"]


def test_scenario_files_without_a_policy_under_test_say_why(project):
    (project.path / "test_gate.py").unlink()
    project.makeini("[pytest]\n")  # no simgate_candidates
    for args in (["scenarios/"], ["-n", "2", "scenarios/"]):
        result = project.runpytest_subprocess("-p", "no:cacheprovider", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*the scenario files define no case to run, because no policy is under test*"])


def test_the_junit_property_is_json(project):
    import xml.etree.ElementTree as ET

    result = project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    records = [json.loads(p.get("value")) for p in ET.parse(project.path / "junit.xml").iter("property")
               if p.get("name") == "simgate"]
    assert sorted((r["case"]["id"], r["outcome"]) for r in records) == [("balance-idle", "FAIL"), ("balance-pd", "PASS")]


def test_an_allowed_run_has_no_promotion_item_and_shows_progress_with_v(project):
    import xml.etree.ElementTree as ET

    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--policy", "pd", "--junitxml=junit.xml", "-v")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    names = [c.get("name") for c in ET.parse(project.path / "junit.xml").iter("testcase")]
    assert names == ["test_scenario[balance-pd]"]
    result.stdout.re_match_lines([r"simgate: cases 1/1, episodes 20/20, \d+ episodes/s, ETA 0:00:00"])


def test_no_progress_lines_without_v_off_a_terminal(project):
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--policy", "pd")
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("simgate: cases")]
