"""Contract fixes from gating a real exported humanoid policy: the idle command of an actuation
delay, pushes (a fixed direction from a scenario file, a single push, a body drawn per episode),
joints excluded from the joint-limit failure mode, and ONNX exports with a batch dimension of 1."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
from pydantic import ValidationError

from simgate.engine.batched import BatchedEngine
from simgate.engine.limits import joint_stops
from simgate.engine.reference import ReferenceEngine
from simgate.engine.substeps import has_block
from simgate.envs.base import MujocoEnv, OneRow
from simgate.envs.info import describe
from simgate.perturbations.apply_pushes import ApplyPushes
from simgate.perturbations.delay_actions import DelayActions
from tests.test_batched_engine import assert_identical
from tests.test_engine import make_case
from tests.test_perturb_world import FLOATERS, context
from tests.test_substeps import assert_same, both_plans

mujoco = pytest.importorskip("mujoco")


# -- 1. the idle command of an actuation delay ----------------------------------------------------

def normalised_quadruped():
    """The shipped quadruped with a humanoid-export style action: [-1, 1] normalised to each
    joint's range (zero is mid-range), so the standing pose is a non-zero action."""
    from envs.quadruped.env import STAND, Quadruped

    class Normalised(Quadruped):
        def ctrl_rows(self, model, data, actions):
            ids = self._index(model)
            a = np.clip(np.asarray(actions, dtype=np.float64).reshape(len(actions), -1), -1.0, 1.0)
            ctrl = np.zeros((len(actions), model.nu))
            ctrl[:, ids["ctrl"]] = ids["low"] + (a + 1.0) / 2.0 * (ids["high"] - ids["low"])
            return ctrl

        def neutral_action(self, model):
            ids = self._index(model)
            return (STAND - (ids["low"] + ids["high"]) / 2.0) / ((ids["high"] - ids["low"]) / 2.0)

    return Normalised()


class Still:
    """Zero actions: under the normalised mapping, every joint to mid-range."""

    def __init__(self, size):
        self.size = size

    def act(self, obs):
        return np.zeros((len(obs), self.size))


def test_a_delayed_episode_starts_on_the_mapping_of_the_neutral_action_not_of_zeros():
    from envs.quadruped.env import STAND

    env = normalised_quadruped()
    model = env.build_model()
    data = mujoco.MjData(model)
    ids = env._index(model)
    neutral = env.ctrl_rows(model, OneRow(data), env.neutral_action(model)[None])[0]
    zeros = env.ctrl_rows(model, OneRow(data), np.zeros((1, 12)))[0]
    np.testing.assert_allclose(neutral[ids["ctrl"]], STAND, atol=1e-12)  # the standing pose
    assert np.abs(neutral - zeros).max() > 0.1  # mid-range is not the standing pose (the knees)

    first = []

    def observer(model, data, step):
        if step == 0:  # 40 ms of delay: the whole first control step runs on the idle command
            first.append(data.ctrl.copy())

    delay = DelayActions(DelayActions.Params(delay_ms=40))
    case = make_case(env="quadruped", episodes=1, horizon=0.1)
    engine = ReferenceEngine(env, Still(12), [delay], 12)
    engine.run_episode(case, 0, 5, observer=observer)
    np.testing.assert_array_equal(first[0], neutral)


def test_both_engines_agree_on_the_neutral_idle_command():
    env = normalised_quadruped()
    make = lambda: [DelayActions(DelayActions.Params(delay_ms=40))]  # noqa: E731
    case = make_case(env="quadruped", episodes=3, horizon=0.2)
    reference = ReferenceEngine(env, Still(12), make(), 12).run(case, range(3))
    assert_identical(reference, BatchedEngine(env, Still(12), make(), 12).run(case, range(3)))


# a servo whose command goes through a first-order filter kept in userdata, its command in [-1, 1]
# normalised to a ctrlrange that is not centred on the home pose (0 rad)
FILTERED_XML = """
<mujoco>
  <compiler angle="radian"/>
  <option timestep="0.002"/>
  <size nuserdata="2"/>
  <worldbody>
    <body name="upper" pos="0 0 1">
      <joint name="shoulder" type="hinge" axis="0 1 0" range="-1 1"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.02" mass="0.5"/>
      <body name="hand" pos="0.3 0 0">
        <joint name="wrist" type="hinge" axis="0 1 0" range="-1 0"/>
        <geom type="capsule" fromto="0 0 0 0.1 0 0" size="0.02" mass="0.1"/>
      </body>
    </body>
  </worldbody>
  <actuator><position name="shoulder" joint="shoulder" kp="30" ctrlrange="-0.5 1"/></actuator>
</mujoco>
"""
LOW, HIGH = -0.5, 1.0


class Filtered(MujocoEnv):
    """A one-servo arm whose wrist hangs on its upper stop at rest; it ``fell`` at 0.2 s."""

    name = "filtered-arm"
    observation_size = 2
    action_size = 1

    def build_model(self):
        return mujoco.MjModel.from_xml_string(FILTERED_XML)

    def reset(self, model, data, rng):
        data.qpos[:] = (0.25, 0.0)  # the shoulder where its servo holds it, the wrist on its stop (gravity keeps it)
        data.userdata[:] = (0.25, 7.0)  # filter state, and a value the mapping never touches

    def observe_rows(self, model, data):
        return data.qpos[:, :2]

    def ctrl_rows(self, model, data, actions):
        target = LOW + (np.clip(actions[:, 0], -1.0, 1.0) + 1.0) / 2.0 * (HIGH - LOW)
        u = data.userdata.copy()
        u[:, 0] = u[:, 0] + 0.5 * (target - u[:, 0])  # the filter advances once per command
        data.userdata = u
        return u[:, :1]

    def neutral_action(self, model):
        return np.array([2.0 * (0.0 - LOW) / (HIGH - LOW) - 1.0])  # the home pose, 0 rad

    def terminated_rows(self, model, data):
        return ["fell" if t >= 0.2 - 1e-9 else None for t in np.asarray(data.time).reshape(-1)]


def test_idle_ctrl_leaves_the_episodes_ctrl_and_userdata_unchanged():
    env = Filtered()
    model = env.build_model()
    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(0))
    data.ctrl[:] = 0.3
    idle = env.idle_ctrl(model, data)
    np.testing.assert_array_equal(idle, [0.25 + 0.5 * (0.0 - 0.25)])  # half-way from the filter state to 0 rad
    np.testing.assert_array_equal(data.userdata, [0.25, 7.0])
    np.testing.assert_array_equal(data.ctrl, [0.3])
    # and the delay's start probes through it: the episode's filter is where reset left it
    latency = DelayActions(DelayActions.Params(delay_ms=20)).start(context(model, 0, data=data, env=env))
    np.testing.assert_array_equal(latency.idle, idle)
    np.testing.assert_array_equal(data.userdata, [0.25, 7.0])


def test_the_default_neutral_action_is_zeros():
    from envs.balancebot.env import BalanceBot

    env = BalanceBot()
    assert np.array_equal(env.neutral_action(env.build_model()), np.zeros(env.action_size))


# -- 2. pushes ------------------------------------------------------------------------------------

def test_a_fixed_push_direction_passes_the_scenario_loader(tmp_path, host):
    """The loader validates strictly, through JSON: a YAML [x, y, z] arrives as a list."""
    from simgate.envs.info import EnvInfoCache
    from simgate.runner import perturbations_for
    from simgate.scenarios.expand import load_cases

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "push.yaml").write_text(
        "name: push\nenv: balancebot\nepisodes: 2\nhorizon: 1.0\nseed: 1\nperturbations:\n"
        "  - kind: apply_pushes\n    params: {body: chassis, force: 5, interval: 0.5, direction: [3, 0, 4]}\n"
        "thresholds:\n  min_success_rate: 0.3\n")
    [case] = load_cases(tmp_path / "s", tmp_path, host.registries, ["balancebot-lqr"], [],
                        env_info=EnvInfoCache(host.registries.envs))
    [push] = perturbations_for(case, host.registries)
    assert push.params.direction == (0.6, 0.0, 0.8)
    strict = ApplyPushes.Params.model_validate_json(json.dumps(
        {"body": "chassis", "force": 5, "interval": 1, "direction": [1, 1, 0]}), strict=True)
    assert strict.direction == pytest.approx((math.sqrt(0.5), math.sqrt(0.5), 0.0))


def test_a_zero_push_direction_is_refused_by_the_scenario_loader():
    with pytest.raises(ValidationError, match=r"direction should be a non-zero \[x, y, z\] vector, received \[0"):
        ApplyPushes.Params.model_validate_json(json.dumps(
            {"body": "chassis", "force": 5, "interval": 1, "direction": [0, 0, 0]}), strict=True)


def push(**kw) -> ApplyPushes:
    params = dict(body="puck", force=7.0)
    params.update(kw)
    return ApplyPushes(ApplyPushes.Params(**params))


def test_count_one_and_first_is_exactly_one_push_without_an_interval():
    model = mujoco.MjModel.from_xml_string(FLOATERS)
    schedule = push(count=1, first=0.5, duration=0.1).start(context(model, 0, n_steps=100))  # 2 s
    np.testing.assert_array_equal(schedule.start, [250])
    np.testing.assert_array_equal(schedule.stop, [300])
    assert schedule.force.shape == (1, 3)
    for seed in range(5):  # one push at a random time: still exactly one
        drawn = push(count=1, first=(0.2, 1.5)).start(context(model, seed, n_steps=100))
        assert len(drawn.start) == 1 and 100 <= drawn.start[0] <= 750


def test_count_caps_a_periodic_schedule():
    model = mujoco.MjModel.from_xml_string(FLOATERS)
    capped = push(count=2, interval=0.25, first=0.1).start(context(model, 0, n_steps=100))
    np.testing.assert_array_equal(capped.start, [50, 175])


@pytest.mark.parametrize("params,text", [
    (dict(count=0, interval=1.0), "count should be ≥ 1 (leave it out for pushes until the horizon), received 0"),
    (dict(), "interval (s between pushes) is required; for a single push write count: 1 and first: <seconds>"),
    (dict(count=1), "for a single push write count: 1 and first: <seconds>"),
    (dict(body=[], interval=1.0), "body should name a body, or list the bodies"),
])
def test_a_schedule_without_a_time_is_refused(params, text):
    with pytest.raises(ValidationError) as exc:
        push(**params)
    assert text in str(exc.value)


def test_a_list_of_bodies_draws_one_per_episode_from_the_episode_rng():
    model = mujoco.MjModel.from_xml_string(FLOATERS)
    ids = {model.body("puck").id, model.body("other").id}
    p = push(body=["puck", "other"], interval=0.5)
    drawn = [p.start(context(model, seed)).body for seed in range(20)]
    assert set(drawn) == ids  # both, over 20 episodes
    assert drawn == [p.start(context(model, seed)).body for seed in range(20)]  # the seed decides
    for seed in range(20):  # the body is the episode stream's first draw
        index = int(np.random.default_rng(seed).integers(2))
        assert drawn[seed] == model.body(("puck", "other")[index]).id


def test_one_named_body_draws_exactly_what_it_drew_before_lists_existed():
    """No draw for the body: the schedule of a single body is the one this code always gave."""
    model = mujoco.MjModel.from_xml_string(FLOATERS)
    for seed in range(3):
        schedule = push(force=(5.0, 10.0), first=0.5, interval=1.0).start(context(model, seed, n_steps=100))
        rng = np.random.default_rng(seed)
        forces = []
        for _ in range(2):  # pushes at 0.5 and 1.5 s of a 2 s horizon; fixed times draw nothing
            magnitude, heading = rng.uniform(5.0, 10.0), rng.uniform(0.0, 2.0 * math.pi)
            forces.append(magnitude * np.array([math.cos(heading), math.sin(heading), 0.0]))
        np.testing.assert_array_equal(schedule.force, forces)
        assert schedule.body == model.body("puck").id


@pytest.mark.parametrize("body,expected", [
    (["chassis", "chasis"], [("body", "no body named 'chasis' in this model; did you mean 'chassis'?")]),
    (["chassis", "world"], [("body", "the world body is fixed and cannot be pushed; name a body of the robot")]),
    (["chassis", "wheel"], []),
])
def test_every_listed_body_is_checked_against_the_model(body, expected):
    from envs.balancebot.env import BalanceBot

    assert push(body=body, interval=1.0).check(describe(BalanceBot())) == expected


@pytest.fixture(scope="module")
def quadruped():
    from envs.quadruped.env import Quadruped

    env = Quadruped()
    return env, env.build_model()


@pytest.mark.parametrize("seed", range(4))
def test_pushes_on_a_drawn_body_plan_the_same_bits_in_blocks_and_steps(quadruped, seed):
    kinds = [push(body=["trunk", "FL_calf", "HR_thigh"], force=[5.0, 20.0], interval=[0.02, 0.1], duration=0.013,
                  direction=(1.0, 0.0, 1.0)),
             push(body="trunk", force=3.0, count=1, first=[0.05, 0.5], duration=0.2, direction="any")]
    assert all(has_block(p) for p in kinds)
    assert_same(both_plans(quadruped, kinds, seed=seed))


# -- 3. joints excluded from the joint-limit failure mode -------------------------------------------

class Excluding(Filtered):
    joint_limit_exclude = ("wrist",)


class Misspelt(Filtered):
    joint_limit_exclude = ("wirst",)


@pytest.mark.parametrize("env_cls,mode", [(Filtered, "joint_limit"), (Excluding, "fell")])
def test_a_joint_resting_on_its_stop_is_joint_limit_only_unless_excluded(host, env_cls, mode):
    env = env_cls()
    case = make_case(env=env.name, episodes=3, horizon=1.0)
    reference = ReferenceEngine(env, Still(1), [], 1).run(case, range(3))
    batched = BatchedEngine(env, Still(1), [], 1).run(case, range(3))
    assert_identical(reference, batched)
    for episode in reference.episodes:
        assert episode.terminated == "fell" and not episode.success
        if mode == "joint_limit":
            assert episode.at_stops >= 0.5  # the wrist: well above the default stop_share of 0.1
        else:
            assert episode.at_stops == 0.0  # the shoulder never reaches its stops
        assert host.classify(case, episode) == mode


def test_an_excluded_name_that_is_no_joint_names_the_closest_joint():
    env = Misspelt()
    model = env.build_model()
    with pytest.raises(ValueError, match="joint_limit_exclude lists 'wirst', which is no joint of its model; "
                                         "did you mean 'wrist'?"):
        joint_stops(model, env)
    case = make_case(env=env.name, episodes=2, horizon=0.1)
    for engine in (ReferenceEngine(env, Still(1), [], 1), BatchedEngine(env, Still(1), [], 1)):
        with pytest.raises(ValueError, match="did you mean 'wrist'"):
            engine.run(case, range(2))


def test_excluding_leaves_the_other_joints_measured():
    env = Excluding()
    model = env.build_model()
    address, _, _ = joint_stops(model, env)
    assert address.tolist() == [model.joint("shoulder").qposadr[0]]
    assert joint_stops(model, Filtered())[0].tolist() == [0, 1]


# -- 4. ONNX exports with a batch dimension of 1 ------------------------------------------------------

def batch_of_one_onnx(path, weights: np.ndarray):
    """obs [1, n] @ W [n, m]: the graph refuses any other batch size."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n, m = weights.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["action"])], "batch_of_one",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, m])],
        [numpy_helper.from_array(weights.astype(np.float32), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# the balancebot's LQR gains, near enough to keep it upright for a while
GAINS = np.array([[-4.0], [-0.4], [0.0], [-0.2]])


@pytest.fixture
def batch_of_one(host, tmp_path):
    spec = host.registries.policies.get("balancebot-lqr-onnx")
    return dataclasses.replace(spec, name="batch-of-one", file=batch_of_one_onnx(tmp_path / "one.onnx", GAINS),
                               sha256=None)


def test_an_onnx_policy_with_a_batch_of_one_is_called_row_by_row_and_says_so(batch_of_one):
    policy = batch_of_one.load()
    assert policy.row_by_row is True
    assert "fixed batch dimension of 1" in policy.note and "dynamic batch dimension" in policy.note
    obs = np.random.default_rng(0).normal(size=(5, 4))
    out = policy.act(obs)
    assert out.shape == (5, 1) and out.dtype == np.float64
    np.testing.assert_array_equal(out, np.concatenate([policy.act(o[None]) for o in obs]))
    np.testing.assert_allclose(out, obs @ GAINS, rtol=1e-5, atol=1e-6)


def test_a_dynamic_batch_onnx_policy_is_called_once(host):
    policy = host.registries.policies.get("balancebot-lqr-onnx").load()
    assert policy.row_by_row is False and policy.note is None


def test_a_batch_of_one_onnx_policy_runs_in_the_batched_engine_as_in_the_reference(host, batch_of_one):
    from envs.balancebot.env import BalanceBot

    env, policy = BalanceBot(), batch_of_one.load()
    case = make_case(episodes=4, horizon=0.5)
    reference = ReferenceEngine(env, policy, [], 1).run(case, range(4))
    batched = BatchedEngine(env, policy, [], 1).run(case, range(4))
    assert_identical(reference, batched)
    assert not any(e.terminated == "policy_error" for e in batched.episodes)


class OneRowOnly:
    """A Python policy that refuses batches: the engine must not retry it row by row."""

    def __init__(self):
        self.calls = 0

    def act(self, obs):
        self.calls += 1
        if len(obs) != 1:
            raise ValueError(f"expected one observation, got {len(obs)}")
        return np.zeros((1, 1))


def test_a_policy_raising_on_the_batch_is_a_policy_error_not_a_silent_row_by_row_retry():
    from envs.balancebot.env import BalanceBot

    policy = OneRowOnly()
    case = make_case(episodes=4, horizon=0.5)
    batched = BatchedEngine(BalanceBot(), policy, [], 1).run(case, range(4))
    assert all(e.terminated == "policy_error" and e.length == 0 for e in batched.episodes)
    assert {e.message for e in batched.episodes} == {"policy raised ValueError: expected one observation, got 2"}
    assert policy.calls == 2  # one call per lane, nothing retried


class FirstRowOnly:
    """A controller written for one robot: reads obs[0], answers one row."""

    def act(self, obs):
        return np.array([[-4.0 * obs[0, 0] - 0.4 * obs[0, 1]]])


class OneTooMany:
    def act(self, obs):
        return np.zeros((len(obs) + 1, 1))


def test_a_policy_answering_one_row_is_asked_row_by_row_as_the_reference_engine_asks_it():
    from envs.balancebot.env import BalanceBot

    case = make_case(episodes=4, horizon=0.5)
    reference = ReferenceEngine(BalanceBot(), FirstRowOnly(), [], 1).run(case, range(4))
    assert_identical(reference, BatchedEngine(BalanceBot(), FirstRowOnly(), [], 1).run(case, range(4)))


def test_a_policy_returning_the_wrong_number_of_actions_is_told_what_act_must_return():
    from envs.balancebot.env import BalanceBot

    batched = BatchedEngine(BalanceBot(), OneTooMany(), [], 1).run(make_case(episodes=4, horizon=0.5), range(4))
    assert all(e.terminated == "policy_error" for e in batched.episodes)
    assert {e.message for e in batched.episodes} == {
        "policy returned 3 actions for a batch of 2 observations; act(obs) must return one action per row of obs"}


def test_the_gate_says_once_at_configure_time_that_a_batch_of_one_runs_row_by_row(batch_of_one):
    """The run's controller loads each ONNX policy once before any worker starts and says what
    the load found (pytest prints it in its warnings summary)."""
    from types import SimpleNamespace

    from simgate.registry import Registry
    from simgate.robots.configure import load_notes

    policies = Registry("policy")
    policies.add(batch_of_one.name, batch_of_one)
    cases = [SimpleNamespace(policy=batch_of_one.name, baseline=None)] * 3  # three cases, one note
    (note,) = load_notes(cases, SimpleNamespace(policies=policies))
    assert "'batch-of-one'" in note and "fixed batch dimension of 1" in note


# -- 5. a scripted controller's files are checked like an ONNX file's bytes ----------------------------

def test_a_scripted_policy_s_files_are_checked_by_their_sha256(tmp_path):
    import hashlib

    from simgate.policies.manifest import read_manifest

    folder = tmp_path / "ctrl"
    folder.mkdir()
    (folder / "gains.json").write_text('{"k": [1.0, 2.0]}')
    digest = hashlib.sha256((folder / "gains.json").read_bytes()).hexdigest()
    entry = ("policies:\n  - name: ctrl\n    env: balancebot\n    format: scripted\n    entry: ctrl:make\n"
             "    files: [gains.json]\n    observation_size: 4\n    action_size: 1\n")
    (folder / "manifest.yaml").write_text(entry)
    (spec,) = read_manifest(folder / "manifest.yaml", "policies/ctrl/manifest.yaml")
    problem = spec.problem(check_digest=True)
    assert problem.startswith("policies/ctrl/manifest.yaml:") and f"files_sha256: {{gains.json: {digest}}}" in problem
    (folder / "manifest.yaml").write_text(entry + f"    files_sha256: {{gains.json: {digest}}}\n")
    (spec,) = read_manifest(folder / "manifest.yaml", "policies/ctrl/manifest.yaml")
    assert spec.problem(check_digest=True) is None
    (folder / "gains.json").write_text('{"k": [1.0, 2.5]}')  # the weights changed under the same name
    problem = spec.problem(check_digest=True)
    assert "files_sha256: gains.json has digest" in problem and f"the manifest says {digest}" in problem


# -- 6. recurrent exports: refused, not run with a memory shared by every episode ---------------------

def test_a_recurrent_torchscript_export_is_refused_when_it_is_loaded(host, tmp_path):
    """rsl_rl's recurrent TorchScript export keeps its LSTM state in buffers of batch size 1 that
    only reset_memory() clears: run as a feed-forward policy, every episode would start from the
    last one's memory. It is refused at load, naming the buffers."""
    import torch

    from simgate.policies.loaders import PolicyLoadError

    class Recurrent(torch.nn.Module):  # the shape of rsl_rl's _TorchPolicyExporter for an LSTM
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(input_size=4, hidden_size=8)
            self.actor = torch.nn.Linear(8, 1)
            self.register_buffer("hidden_state", torch.zeros(1, 1, 8))
            self.register_buffer("cell_state", torch.zeros(1, 1, 8))

        def forward(self, x):
            y, (h, c) = self.rnn(x.unsqueeze(0), (self.hidden_state, self.cell_state))
            self.hidden_state[:] = h
            self.cell_state[:] = c
            return self.actor(y.squeeze(0))

        @torch.jit.export
        def reset_memory(self):
            self.hidden_state[:] = 0.0
            self.cell_state[:] = 0.0

    path = tmp_path / "lstm.pt"
    with warnings.catch_warnings():  # torch 2.13 deprecates jit.script; rsl_rl's exports are made with it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Recurrent()).save(str(path))
        torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 1))).save(str(tmp_path / "ff.pt"))
    spec = dataclasses.replace(host.registries.policies.get("balancebot-lqr-onnx"), name="lstm", format="torchscript",
                               file=path, sha256=None)
    with pytest.raises(PolicyLoadError, match="'lstm'.*recurrent policy.*hidden_state, cell_state.*feed-forward"):
        spec.load()
    assert dataclasses.replace(spec, file=tmp_path / "ff.pt").load().act(np.zeros((3, 4))).shape == (3, 1)
