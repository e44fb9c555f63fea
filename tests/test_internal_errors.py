"""Errors in simgate itself are simgate's (issue 23): a fault in simgate's own code propagates with
its traceback (an errored item, never a case failure charged to the policy; INTERNALERROR and
exit 3 outside an item), while a policy's or a plugin's code that raises fails only its own case,
named. A damaged cache entry is a counted miss, said in the case's note; a fault in the cache's
reader is not swallowed. A policy written for one robot is found once by the batched engine."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from simgate.perturbations.base import Perturbation
from tests.test_engine import make_case
from tests.test_faults import CONTROLLERS, PLUGIN, SCENARIO, policies, run

REPO = Path(__file__).resolve().parents[1]

#: a project conftest that plants a bug in simgate's own code (the verdict's evaluation), for one
#: policy's case only: the other case must run and report as usual
BUG_IN_THE_VERDICT = '''
simgate_plugins = ["myplugin"]

import simgate.verdict

_evaluate = simgate.verdict.evaluate


def _evaluate_with_a_bug(case, *args, **kwargs):
    if case.policy == "pd":
        raise AttributeError("injected bug in simgate.verdict.evaluate")
    return _evaluate(case, *args, **kwargs)


simgate.verdict.evaluate = _evaluate_with_a_bug
'''


def _project(root: Path, conftest: str) -> Path:
    (root / "conftest.py").write_text(conftest)
    (root / "myplugin.py").write_text(PLUGIN)
    (root / "controllers.py").write_text(CONTROLLERS)
    (root / "test_gate.py").write_text("def test_scenario(simgate_result):\n    simgate_result.check()\n")
    (root / "scenarios").mkdir()
    (root / "scenarios" / "balance.yaml").write_text(textwrap.dedent(SCENARIO))
    (root / "pytest.ini").write_text("[pytest]\nsimgate_candidates =\n    pd\n")
    return root


def _json(root: Path, name: str) -> dict:
    return json.loads((root / "reports" / name).read_text())


@pytest.fixture(scope="module")
def bug_run(tmp_path_factory):
    """One xdist run of two cases: the pd case meets a bug planted in simgate, the raiser case a
    policy that raises in act."""
    root = _project(tmp_path_factory.mktemp("bug"), BUG_IN_THE_VERDICT)
    return root, run(root, "-n", "2", *policies("pd", "raiser"))


# -- a fault in simgate during a case -----------------------------------------------------------
def test_a_bug_in_simgate_during_a_case_errors_its_item_with_the_traceback_not_a_setup_error(bug_run):
    root, result = bug_run
    out = result.stdout + result.stderr
    assert result.returncode == 3, out[-3000:]  # INVALID: the crashed case left no evidence
    assert "ERROR at setup of test_scenario[balance-pd]" in out, out[-3000:]
    assert "AttributeError: injected bug in simgate.verdict.evaluate" in out
    assert "simgate/runner.py" in out  # the traceback, through simgate's own code
    crashed = _json(root, "summary.json")["cases"]["balance-pd"]
    assert crashed["status"] == "crashed" and "setup_error" not in crashed["failure_modes"], crashed
    assert "policy_error" not in crashed["failure_modes"]  # never charged to the policy's code
    verdict = _json(root, "verdict.json")
    assert verdict["decision"] == "INVALID" and not verdict["promote"]  # a fault in simgate: no evidence
    assert not verdict["candidates"]["pd"]["promote"]


def test_a_policy_raising_in_act_is_still_a_named_policy_error_of_its_own_case(bug_run):
    root, _ = bug_run
    bad = _json(root, "summary.json")["cases"]["balance-raiser"]
    assert bad["status"] == "ran" and bad["outcome"] == "FAIL", bad
    assert bad["failure_modes"] == {"policy_error": 8}
    errors = [r for r in bad["requirements"] if r["kind"] == "policy_errors"]
    assert errors and "policy 'raiser' raised RuntimeError: bad weights" in errors[0]["bound"], errors


def test_a_bug_in_simgate_at_configure_time_is_an_internal_error_with_exit_3(tmp_path):
    conftest = textwrap.dedent('''
        simgate_plugins = ["myplugin"]

        import simgate.envs.info


        def _describe_with_a_bug(env):
            raise TypeError("injected bug in simgate.envs.info.describe")


        simgate.envs.info.describe = _describe_with_a_bug
        ''')
    root = _project(tmp_path, conftest)
    result = run(root, "-n", "0", *policies("pd"))
    out = result.stdout + result.stderr
    assert result.returncode == 3, out[-3000:]
    assert "INTERNALERROR" in out and "TypeError: injected bug in simgate.envs.info.describe" in out
    assert "cannot be built" not in out  # not blamed on the env


def test_an_env_whose_own_code_raises_at_configure_time_is_named_without_a_traceback(tmp_path):
    conftest = textwrap.dedent('''
        simgate_plugins = ["myplugin"]

        from simgate.envs.gymnasium_adapter import GymnasiumEnv


        def _build_model(self):
            raise ValueError("the env's own model is broken")


        GymnasiumEnv.build_model = _build_model
        ''')
    root = _project(tmp_path, conftest)
    result = run(root, "-n", "0", *policies("pd"))
    out = result.stdout + result.stderr
    assert result.returncode == 4, out[-3000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert ("env 'InvertedPendulum-v5' (registered by plugin simgate.builtin.envs) cannot be built: "
            "ValueError: the env's own model is broken") in result.stderr


# -- in process: whose code raised --------------------------------------------------------------
class Exploding(Perturbation):
    """A plugin's perturbation that cannot apply to this model (a body the scenario names)."""

    kind = "exploding"
    stage = "state"

    def start(self, ctx):
        raise ValueError("no body named 'nose' in this model")


@pytest.fixture(scope="module")
def host():
    """A host of its own: a perturbation kind is registered in it."""
    import sys

    from simgate.plugin_manager import Host

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    made = Host(project_plugins=["envs", "policies", "plugins.stuck"], autoload=False)
    made.registries.perturbations.current_plugin = "tests.test_internal_errors"
    made.registries.perturbations.add("exploding", Exploding)
    return made


@pytest.mark.parametrize("engine", ["reference", "batched"])
def test_a_plugins_perturbation_that_cannot_apply_fails_its_case_naming_it(host, engine):
    from simgate.runner import run_case

    case = make_case(perturbations=({"kind": "exploding", "params": {}},), horizon=0.2)
    result = run_case(case, host, engine, None)
    assert result.outcome == "ERROR" and result.failure_modes == {"setup_error": case.episodes}
    assert result.error == ("setup_error: perturbation 'exploding' (perturbations[0], plugin tests.test_internal_errors) "
                            "raised ValueError: no body named 'nose' in this model"), result.error


@pytest.mark.parametrize("engine, module", [("reference", "simgate.engine.reference"),
                                            ("batched", "simgate.engine.batched")])
def test_a_bug_in_an_engine_propagates_out_of_the_case(host, monkeypatch, engine, module):
    import importlib

    from simgate.runner import run_case

    def broken(states):
        raise AttributeError("injected bug in state_hashes")

    monkeypatch.setattr(importlib.import_module(module), "state_hashes", broken)
    with pytest.raises(AttributeError, match="injected bug in state_hashes"):
        run_case(make_case(horizon=0.2), host, engine, None)


def test_a_bug_while_building_a_case_propagates(host, monkeypatch):
    import simgate.rig
    from simgate.runner import run_case

    def broken(*args, **kwargs):
        raise TypeError("injected bug in make_engine")

    monkeypatch.setattr(simgate.rig, "make_engine", broken)  # where the rig looks it up
    with pytest.raises(TypeError, match="injected bug in make_engine"):
        run_case(make_case(horizon=0.2), host, "auto", None)


def test_a_users_input_that_does_not_fit_stays_a_setup_error(host):
    """The policy's sizes against its env: the user's manifest, not simgate's fault."""
    import dataclasses

    from simgate.runner import run_case

    spec = host.registries.policies.get("balancebot-lqr")
    host.registries.policies._entries["too-wide"] = dataclasses.replace(spec, name="too-wide", observation_size=9)
    try:
        result = run_case(make_case(policy="too-wide"), host)
    finally:
        del host.registries.policies._entries["too-wide"]
    assert result.outcome == "ERROR" and result.error.startswith("setup_error: policy 'too-wide' has observation size 9")


def test_a_scenario_value_checked_while_the_case_runs_stays_a_setup_error(host):
    """A threshold naming a joint the robot does not have (checked by the verdict's own code)."""
    from simgate.runner import run_case

    result = run_case(make_case(horizon=0.2, thresholds={"max_mean_torque": {"whel": 1.0}}), host)
    assert result.outcome == "ERROR" and result.failure_modes == {"setup_error": 4}
    assert result.error.startswith("setup_error: threshold names joint 'whel', which has no actuator"), result.error


def test_a_value_error_of_an_operation_inside_simgate_is_a_fault(host, monkeypatch):
    import simgate.verdict
    from simgate.runner import run_case

    def broken(*args, **kwargs):
        return np.zeros(2) + np.zeros(3)  # numpy refuses the shapes: a bug, not a check

    monkeypatch.setattr(simgate.verdict, "evaluate", broken)
    with pytest.raises(ValueError, match="could not be broadcast"):
        run_case(make_case(horizon=0.2), host)


# -- the episode cache --------------------------------------------------------------------------
def test_a_damaged_cache_entry_is_a_counted_miss_said_in_the_cases_note(host, tmp_path):
    from simgate.runner import run_case

    case = make_case(episodes=4, horizon=0.5)
    first = run_case(case, host, "auto", tmp_path)
    assert first.error is None and first.episodes_run == 4 and first.cache_note is None
    entries = sorted(tmp_path.rglob("*.npz"))
    assert len(entries) == 4
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # truncated
    entries[1].write_text("not an npz file\n")
    second = run_case(case, host, "auto", tmp_path)
    assert (second.episodes_run, second.episodes_cached) == (2, 2)
    assert "2 cached episode(s) of case 't' were damaged" in second.cache_note, second.cache_note
    third = run_case(case, host, "auto", tmp_path)  # recomputed and stored anew
    assert (third.episodes_run, third.episodes_cached, third.cache_note) == (0, 4, None)


def test_a_fault_in_the_cache_reader_is_not_taken_for_a_damaged_entry(host, tmp_path, monkeypatch):
    from simgate import cache
    from simgate.runner import run_case

    case = make_case(episodes=2, horizon=0.2)
    run_case(case, host, "auto", tmp_path)

    def broken(meta, index):
        raise TypeError("injected bug in the cache reader")

    monkeypatch.setattr(cache, "_checked_meta", broken)
    with pytest.raises(TypeError, match="injected bug in the cache reader"):
        run_case(case, host, "auto", tmp_path)


def test_a_cache_entry_counts_each_kind_of_damage(tmp_path):
    from simgate.cache import EpisodeCache
    from simgate.engine.rollouts import Episode

    store = EpisodeCache(tmp_path, {"k": 1})
    for index in range(3):
        store.put(Episode(index=index, seed=index, success=True, length=1, ret=0.0, progress=0.0, terminated=None,
                          message=None, mean_abs_torque=np.zeros(1), peak_abs_torque=np.zeros(1),
                          step_hashes=np.zeros(1, dtype=np.uint64), actions=np.zeros((1, 1))), "reference")
    store.path(0).write_bytes(b"")
    store.path(1).write_bytes(store.path(2).read_bytes())  # a valid entry, of another episode
    assert store.load(0) is None and store.load(1) is None and store.load(2) is not None
    assert store.load(5) is None  # absent: no damage
    assert store.damaged == 2 and store.damage == {"unreadable (EOFError)": 1, "another key": 1}


# -- the batched engine: a policy written for one robot, found once -----------------------------
class OneRobot:
    """A controller written for one robot: reads ``obs[0]``, answers one action. Counts the calls
    it was handed more than one row."""

    def __init__(self, inner):
        self.inner, self.batches, self.calls = inner, 0, 0

    def act(self, obs):
        self.calls += 1
        self.batches += len(obs) > 1
        return self.inner.act(obs[:1])


def test_a_policy_that_answers_one_row_is_found_at_its_first_call_and_asked_row_by_row(host):
    from envs.balancebot.env import BalanceBot
    from simgate.engine.batched import BatchedEngine
    from simgate.engine.reference import ReferenceEngine

    lqr = host.registries.policies.get("balancebot-lqr").load()
    case = make_case(episodes=4, horizon=0.5)
    policy = OneRobot(lqr)
    engine = BatchedEngine(BalanceBot(), policy, [], 1, nthread=1)
    assert engine.row_by_row is None
    batched = engine.run(case, range(4))
    assert engine.row_by_row is True
    assert policy.batches == 1  # the first call only: never a batch again, however many steps
    reference = ReferenceEngine(BalanceBot(), OneRobot(lqr), [], 1).run(case, range(4))
    for a, b in zip(reference.episodes, batched.episodes):
        assert (a.length, a.terminated, a.message) == (b.length, b.terminated, b.message)
        np.testing.assert_array_equal(a.step_hashes, b.step_hashes)
        np.testing.assert_array_equal(a.actions, b.actions)


def test_a_policy_that_answers_every_row_is_never_asked_row_by_row(host):
    from envs.balancebot.env import BalanceBot
    from simgate.engine.batched import BatchedEngine

    class Counting:
        def __init__(self, inner):
            self.inner, self.sizes = inner, []

        def act(self, obs):
            self.sizes.append(len(obs))
            return self.inner.act(obs)

    policy = Counting(host.registries.policies.get("balancebot-lqr").load())
    engine = BatchedEngine(BalanceBot(), policy, [], 1, nthread=1)
    engine.run(make_case(episodes=4, horizon=0.2), range(4))
    assert engine.row_by_row is False and set(policy.sizes) == {2}


# -- Ray: planning and collecting -----------------------------------------------------------------
def _scheduler(tmp_path):
    from simgate.scaleout import RayScheduler

    return RayScheduler(None, "local", root=tmp_path, cache_dir=tmp_path / "cache", reports_dir=tmp_path / "reports",
                        plugins=(), host=None)


def test_planning_a_case_on_ray_lets_a_bug_in_simgate_through(tmp_path, monkeypatch):
    from simgate import scaleout

    def broken(*args):
        raise AttributeError("injected bug in context_of")

    monkeypatch.setattr(scaleout, "context_of", broken)
    with pytest.raises(AttributeError, match="injected bug in context_of"):
        _scheduler(tmp_path)._plan(make_case(), "balancebot-lqr", None, "auto", tmp_path)


def test_planning_a_case_that_cannot_be_set_up_leaves_it_to_its_item_and_says_so(tmp_path, monkeypatch):
    from simgate import scaleout
    from simgate.errors import SimgateError

    def refused(*args):
        raise SimgateError("policy 'x' has observation size 9")

    monkeypatch.setattr(scaleout, "context_of", refused)
    scheduler = _scheduler(tmp_path)
    assert scheduler._plan(make_case(), "balancebot-lqr", None, "auto", tmp_path) == (None, None)
    assert scheduler.failed == ["t: not planned: policy 'x' has observation size 9"]


class _FakeRay:
    """What the collector asks of Ray: ``wait``, which raises ``error``; from its second call on
    (a collector that retried) it stops the collector first, so a test never loops."""

    class exceptions:
        class RayError(Exception):
            pass

    def __init__(self, error, stop, at_once=False):
        self.error, self.stop = error, stop
        self.calls = 1 if at_once else 0

    def wait(self, refs, num_returns, timeout):
        self.calls += 1
        if self.calls > 1:
            self.stop.set()
        raise self.error


def test_a_bug_in_the_ray_collector_is_raised_in_the_items_that_wait_for_it(tmp_path):
    scheduler = _scheduler(tmp_path)
    scheduler.ray = _FakeRay(KeyError("injected bug in the collector"), scheduler._stop)
    scheduler.inflight = {"ref": object()}
    scheduler._collect()  # the collector thread's body: returns at once, keeping the fault
    assert scheduler.ray.calls == 1
    with pytest.raises(RuntimeError, match="collector thread failed") as raised:
        scheduler.wait_for("t", idle=1.0)
    assert isinstance(raised.value.__cause__, KeyError)


def test_ray_failing_under_the_collector_while_it_stops_is_not_a_fault(tmp_path):
    scheduler = _scheduler(tmp_path)
    scheduler.ray = _FakeRay(_FakeRay.exceptions.RayError("shutting down"), scheduler._stop, at_once=True)
    scheduler.inflight = {"ref": object()}
    scheduler._collect()
    assert scheduler.crashed is None
    scheduler.wait_for("t", idle=1.0)  # nothing open: returns
