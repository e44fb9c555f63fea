"""``python -m simgate contract check <policy> <log>`` and its library forms: a log recorded in the
training env (here: the Python quadruped, and a variant with a previous-action observation and a
range-normalised action) replayed through the policy's contract on the YAML robot. The right
contract reproduces the log exactly (max |diff| 0 for every term and for ctrl); each seeded
mistake (quaternion order, joint order, filter, the first previous action) fails naming its term;
a log that does not fit is one error naming the file and the key (exit 4)."""

from __future__ import annotations

import dataclasses
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

mujoco = pytest.importorskip("mujoco")

from simgate.cli import main as cli  # noqa: E402
from simgate.envs.base import OneRow  # noqa: E402
from simgate.errors import SimgateError  # noqa: E402
from simgate.robots.load import contract_file  # noqa: E402
from simgate.robots.logcheck import Mismatch, check_log, check_manifest_log, record_log  # noqa: E402
from simgate.runner import build_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "policies" / "quadruped" / "contract.yaml"
POLICY = "quadruped-robust-contract"
STEPS = 100
SEED = 11


def command(model, data):
    """The Python quadruped's command (userdata slots 0, 1): vx, vy = 0, yaw rate."""
    return (data.userdata[0], 0.0, data.userdata[1])


def start_yaw(model, data):
    return data.userdata[4]  # the episode's drawn heading (envs/quadruped/env.py START_YAW)


@pytest.fixture(scope="module")
def log(host, tmp_path_factory) -> Path:
    """100 control steps of quadruped-robust's network in the Python quadruped (the training env)."""
    from envs.quadruped.env import Quadruped

    env = Quadruped()
    model = env.build_model()
    policy = host.registries.policies.get("quadruped-robust").load()
    path = record_log(env, policy, model, SEED, STEPS, tmp_path_factory.mktemp("log") / "robust.npz",
                      command=command, start_yaw=start_yaw)
    with np.load(path) as archive:
        assert archive["command"][0].tolist() == [0.2, 0.0, 0.0] and archive["obs"].shape == (STEPS, 34)
    return path


def spec_with(host, path: Path, **edits):
    """quadruped-robust-contract with the contract read from ``path`` (a modified copy)."""
    spec = host.registries.policies.get(POLICY)
    return dataclasses.replace(spec, contract=contract_file(path, path.name), **edits)


def write_contract(tmp_path: Path, change=None, log: str | None = None, name="contract.yaml", base=None) -> Path:
    data = yaml.safe_load(CONTRACT.read_text()) if base is None else base
    data = yaml.safe_load(yaml.safe_dump(data))  # a deep copy
    if change is not None:
        change(data)
    if log is not None:
        data["log"] = {"file": log}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def mjcf_env(host, spec):
    return build_env(host.registries.envs.get("quadruped-mjcf"), spec)


def run(capsys, *args):
    code = cli(["--rootdir", str(REPO), "contract", "check", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- 1. the right contract reproduces the log exactly ------------------------------------------

def test_the_shipped_contract_reproduces_the_python_quadruped_log_exactly(host, log, capsys, tmp_path):
    code, out, err = run(capsys, POLICY, log)
    assert code == 0, out + err
    lines = out.splitlines()
    for term, cols in (("projected_gravity", "0-2"), ("base_ang_vel", "3-5"), ("joint_pos_rel", "6-17"),
                       ("joint_vel", "18-29"), ("velocity_commands", "30-31"), ("gait_phase", "32-33")):
        [line] = [x for x in lines if x.split()[0] == term]
        assert re.fullmatch(rf"\s*{term}\s+cols {cols}\s+max \|diff\| 0\s+ok", line), line
    [ctrl] = [x for x in lines if x.split()[0] == "ctrl"]
    assert re.fullmatch(r"\s*ctrl\s+max \|diff\| 0\s+ok", ctrl), ctrl
    [network] = [x for x in lines if x.strip().startswith("action (network)")]
    assert re.fullmatch(r"\s*action \(network\)\s+max \|diff\| 0\s+ok", network), network
    assert lines[-1].startswith("PASS") and err == ""

    spec = host.registries.policies.get(POLICY)
    result = check_log(mjcf_env(host, spec), log)
    assert result.ok and result.steps == STEPS and result.tolerance == 1e-4
    assert all(d.max_diff == 0.0 for d in result.terms + [result.ctrl])

    # the gate's configure-time form: a contract whose log: is this log
    (tmp_path / "robust.npz").write_bytes(log.read_bytes())
    spec = spec_with(host, write_contract(tmp_path, log="robust.npz"))
    assert check_manifest_log(spec, mjcf_env(host, host.registries.policies.get(POLICY))) is None
    assert check_manifest_log(host.registries.policies.get(POLICY), mjcf_env(host, spec)) is None  # no log: stated


def test_another_network_under_the_right_contract_fails_on_its_actions(host, log, tmp_path):
    """The contract reproduces every observation and ctrl of the log, but the file is another
    network (the nominal one where the log is the robust one's): its actions on the logged
    observations are not the logged actions, and the gate's form of the check says so."""
    spec = host.registries.policies.get(POLICY)
    other = dataclasses.replace(spec, name="other", file=REPO / "policies" / "quadruped" / "nominal.onnx", sha256=None)
    result = check_log(mjcf_env(host, spec), log, policy=other.load())
    assert all(d.max_diff == 0.0 for d in result.terms + [result.ctrl])
    assert [d.name for d in result.failing] == ["action (network)"] and result.network.max_diff > 0.01
    assert check_log(mjcf_env(host, spec), log, policy=spec.load()).network.max_diff == 0.0
    (tmp_path / "robust.npz").write_bytes(log.read_bytes())
    wrong = dataclasses.replace(spec_with(host, write_contract(tmp_path, log="robust.npz")), name="other",
                                file=other.file, sha256=None)
    problem = check_manifest_log(wrong, mjcf_env(host, spec))
    assert isinstance(problem, Mismatch) and "action (network) max |diff|" in problem and "the network file" in problem


def test_a_difference_fails_the_cli_naming_the_term_and_its_first_step_and_tolerance_overrides(log, capsys, tmp_path):
    with np.load(log) as archive:
        arrays = dict(archive)
    arrays["obs"][40:, 4] += 1e-3  # base_ang_vel's y from step 40
    path = tmp_path / "tampered.npz"
    np.savez(path, **arrays)
    code, out, _ = run(capsys, POLICY, path)
    assert code == 1, out
    assert re.search(r"base_ang_vel\s+cols 3-5\s+max \|diff\| 0\.001 \(col 4, step \d+\)\s+FAIL", out), out
    assert "first over the tolerance at step 40" in out
    logged = arrays["obs"][40, 3:6]
    assert f"logged [{logged[0]:.6g}, {logged[1]:.6g}, {logged[2]:.6g}]" in out
    assert out.splitlines()[-1].startswith("FAIL") and "base_ang_vel" in out.splitlines()[-1]
    assert re.search(r"projected_gravity\s+cols 0-2\s+max \|diff\| 0\s+ok", out)

    code, out, _ = run(capsys, POLICY, path, "--tolerance", "2e-3")
    assert code == 0 and "tolerance 0.002" in out, out


# -- 2. seeded mismatches --------------------------------------------------------------------------

def observation(kind):
    def find(data):
        return next(t for t in data["observation"] if t["term"] == kind)
    return find


def set_quat_order(data):
    observation("projected_gravity")(data)["quat_order"] = "wxyz_read_as_xyzw"


def swap_joints(data):
    data["joints"][1], data["joints"][2] = data["joints"][2], data["joints"][1]  # FL flexion <-> knee


def set_filter(data):
    data["action"]["filter_alpha"] = 0.5


@pytest.mark.parametrize("change, failing", [
    (set_quat_order, {"projected_gravity"}),
    (swap_joints, {"joint_pos_rel", "joint_vel"}),
    (set_filter, {"ctrl"}),
], ids=["quat-order", "joint-order", "filter"])
def test_a_seeded_mismatch_fails_naming_its_term(host, log, tmp_path, change, failing):
    (tmp_path / "robust.npz").write_bytes(log.read_bytes())
    spec = spec_with(host, write_contract(tmp_path, change, log="robust.npz"))
    env = mjcf_env(host, spec)
    result = check_log(env, log)
    assert {d.name for d in result.failing} == failing, result.table()
    for d in result.failing:
        assert d.max_diff > 1e-3 and d.first_bad is not None
    assert all(d.max_diff == 0 for d in result.terms + [result.ctrl] if d.name not in failing)
    table = result.table()
    assert "FAIL: the contract does not reproduce the log: " + ", ".join(
        d.name for d in result.failing) in table

    message = check_manifest_log(spec, env)
    assert isinstance(message, Mismatch)  # the gate refuses it as INVALID (exit 3), not as a usage error
    assert message.startswith(spec.contract.where("log") + ": log:"), message
    assert re.fullmatch(r"contract\.yaml:\d+", spec.contract.where("log"))
    for d in result.failing:
        assert f"{d.name} max |diff| {d.max_diff:.3g}" in message, message


def test_a_log_outside_the_manifest_folder_and_an_unreadable_one_are_problems_not_crashes(host, log, tmp_path):
    spec = spec_with(host, write_contract(tmp_path, log="../elsewhere.npz"))
    message = check_manifest_log(spec, mjcf_env(host, spec))
    assert message.startswith(spec.contract.where("log", "file")) and "outside the manifest's folder" in message
    spec = spec_with(host, write_contract(tmp_path, log="missing.npz"))
    message = check_manifest_log(spec, mjcf_env(host, spec))
    assert "missing.npz does not exist" in message and message.startswith(spec.contract.where("log", "file"))
    assert not isinstance(message, Mismatch)  # a file that is not there: a usage error (exit 4)


# -- 2d. the first previous action: a training env that observes its last applied action ---------

def last_action_quadruped():
    """The Python quadruped with an exporter's habits: the observation appends the previous
    applied action (initially the default pose in action space), and the action is [-1, 1]
    normalised onto each joint's range (so the standing pose is not zero in action space: the
    knees are at 1/7). Written with the same floating-point operations as simgate's ActionMap,
    since the pass case asks for bit-identical values."""
    from envs.quadruped.env import STAND, XML_PATH, Quadruped

    PREV = slice(5, 17)

    class LastAction(Quadruped):
        observation_size = 46

        def build_model(self):
            spec = mujoco.MjSpec.from_file(str(XML_PATH))
            spec.nuserdata = 17
            return spec.compile()

        def neutral_action(self, model):
            ids = self._index(model)
            return 2.0 * (STAND - ids["low"]) / (ids["high"] - ids["low"]) - 1.0

        def reset(self, model, data, rng):
            super().reset(model, data, rng)
            data.userdata[PREV] = self.neutral_action(model)

        def observe_rows(self, model, data):
            return np.concatenate([super().observe_rows(model, data), data.userdata[:, PREV]], axis=1)

        def ctrl_rows(self, model, data, actions):
            ids = self._index(model)
            a = np.clip(np.asarray(actions, dtype=np.float64).reshape(len(actions), -1), -1.0, 1.0)
            u = np.array(data.userdata, dtype=np.float64)
            u[:, PREV] = a
            data.userdata = u
            target = ids["low"] + (a + 1.0) * 0.5 * (ids["high"] - ids["low"])
            ctrl = np.zeros((len(actions), model.nu))
            ctrl[:, ids["ctrl"]] = np.clip(target, ids["low"], ids["high"])
            return ctrl

    return LastAction()


class Sway:
    """A scripted 46-input policy: half its previous action, half a sway about the standing pose
    on the gait clock (deterministic, inside [-1, 1])."""

    def __init__(self, neutral):
        self.neutral = np.asarray(neutral, dtype=np.float64)
        self.pattern = np.tile([0.3, 0.4, -0.4], 4) * np.repeat([1.0, -1.0, -1.0, 1.0], 3)

    def act(self, obs):
        obs = np.asarray(obs, dtype=np.float64)
        assert obs.shape[1] == 46
        return 0.5 * obs[:, 34:46] + 0.5 * (self.neutral + obs[:, 32:33] * self.pattern)


def last_action_contract(data):
    data["observation"].append({"term": "last_action", "which": "applied", "initial": "default_pose",
                                "group": "action"})
    data["action"]["mapping"] = "range"
    del data["action"]["scale"]


@pytest.fixture(scope="module")
def last_action_log(tmp_path_factory) -> Path:
    env = last_action_quadruped()
    model = env.build_model()
    path = record_log(env, Sway(env.neutral_action(model)), model, SEED, 40,
                      tmp_path_factory.mktemp("log") / "last.npz", command=command, start_yaw=start_yaw)
    with np.load(path) as archive:
        first = archive["obs"][0, 34:46]
        assert first[2] != 0 and first[2] == env.neutral_action(model)[2]  # the knee: not zero
        assert np.abs(np.diff(archive["action"], axis=0)).max() > 0.05  # it moves
    return path


def test_the_previous_action_contract_passes_and_initial_zeros_fails_naming_last_action(host, last_action_log,
                                                                                          tmp_path):
    spec = spec_with(host, write_contract(tmp_path, last_action_contract), observation_size=46)
    env = mjcf_env(host, spec)
    assert env.observation_size == 46 and env.actions.cfg.mapping == "range"
    result = check_log(env, last_action_log)
    assert result.ok and all(d.max_diff == 0 for d in result.terms + [result.ctrl]), result.table()
    assert [d.name for d in result.terms][-1] == "last_action"

    def zeros(data):  # the previous action starts at zeros, for the filter and for last_action alike
        last_action_contract(data)
        data["observation"][-1]["initial"] = "zeros"
        data["action"]["initial"] = "zeros"

    assert_last_action_fails_at_the_first_step(host, tmp_path, zeros, last_action_log)


def assert_last_action_fails_at_the_first_step(host, tmp_path, change, log):
    (tmp_path / "last.npz").write_bytes(log.read_bytes())
    spec = spec_with(host, write_contract(tmp_path, change, log="last.npz", name="zeros.yaml"), observation_size=46)
    result = check_log(mjcf_env(host, spec), log)
    assert [d.name for d in result.failing] == ["last_action"], result.table()
    d = result.failing[0]
    assert d.first_bad == 0 and d.logged[2] == pytest.approx(1 / 7) and d.built[2] == 0.0  # the knee at step 0
    assert d.max_diff == pytest.approx(1 / 7)
    message = check_manifest_log(spec, mjcf_env(host, spec))
    assert message.startswith(spec.contract.where("log")) and "last_action max |diff| 0.143" in message, message


def test_the_last_action_terms_own_initial_zeros_fails_naming_last_action(host, last_action_log, tmp_path):
    def zeros(data):  # only the term's initial: the filter's (action.initial) stays default_pose
        last_action_contract(data)
        data["observation"][-1]["initial"] = "zeros"

    assert_last_action_fails_at_the_first_step(host, tmp_path, zeros, last_action_log)


def test_the_replay_advances_the_contract_state_as_an_episode_does(host, last_action_log, tmp_path):
    """The ctrl_rows call in the replay is what moves last_action: without it, every step
    would show the initial value (a check against a replay that forgot the state would pass
    the first step only)."""
    spec = spec_with(host, write_contract(tmp_path, last_action_contract), observation_size=46)
    env = mjcf_env(host, spec)
    model = env.build_model()
    data = mujoco.MjData(model)
    env.reset(model, data, np.random.default_rng(0))
    with np.load(last_action_log) as archive:
        action = archive["action"]
    before = env.observe_rows(model, OneRow(data))[0, 34:46].copy()
    env.ctrl_rows(model, OneRow(data), action[0][None])
    after = env.observe_rows(model, OneRow(data))[0, 34:46]
    np.testing.assert_array_equal(after, np.clip(action[0], -1, 1))
    assert np.abs(after - before).max() > 0


# -- 3. logs that do not fit: one error naming the file and the key (exit 4) -----------------------

def _rewrite(edit):
    def apply(src: Path, dst: Path) -> Path:
        with np.load(src) as archive:
            arrays = dict(archive)
        edit(arrays)
        np.savez(dst, **arrays)
        return dst
    return apply


def _drop(key):
    return _rewrite(lambda a: a.pop(key))


def _short(key):
    return _rewrite(lambda a: a.__setitem__(key, a[key][:-1]))


def _narrow(key):
    return _rewrite(lambda a: a.__setitem__(key, a[key][:, :-1]))


def _text(src: Path, dst: Path) -> Path:
    dst.write_text("obs,action\n0,1\n")
    return dst


def _npy(src: Path, dst: Path) -> Path:
    with open(dst, "wb") as f:
        np.save(f, np.zeros((3, 34)))
    return dst


def _nan(src, dst):
    return _rewrite(lambda a: a["qvel"].__setitem__((2, 3), np.nan))(src, dst)


def _typo(src, dst):
    return _rewrite(lambda a: a.__setitem__("sensor_data", a.pop("sensordata")))(src, dst)


#: (id, make the bad log from a good one, needles of the one message)
BAD_LOGS = [
    ("lengths-differ", _short("qvel"), ("key 'qvel' has", "rows but 'obs' has", "same steps")),
    ("missing-key", _drop("ctrl"), ("key 'ctrl' is missing", "record it in the training env")),
    ("wrong-obs-width", _narrow("obs"), ("key 'obs' has 33 columns but the contract's observation_size is 34",)),
    ("wrong-action-width", _narrow("action"), ("key 'action' has 11 columns", "action_size")),
    ("wrong-qpos-width", _narrow("qpos"), ("key 'qpos' has 18 columns but the model's nq is 19",)),
    ("not-npz", _text, ("is not an .npz file", "numpy.savez")),
    ("npy-not-npz", _npy, ("is not an .npz file", "numpy.savez")),
    ("non-finite", _nan, ("key 'qvel' has a non-finite value (nan) at index (2, 3)",)),
    ("misspelt-key", _typo, ("unknown key 'sensor_data'", "did you mean 'sensordata'?")),
]


@pytest.mark.parametrize("make, needles", [b[1:] for b in BAD_LOGS], ids=[b[0] for b in BAD_LOGS])
def test_a_bad_log_is_one_error_naming_the_file_and_the_key(log, capsys, tmp_path, make, needles):
    bad = make(log, tmp_path / "bad.npz")
    code, out, err = run(capsys, POLICY, bad)
    assert code == 4, out + err
    assert out == "" and err.count("ERROR:") == 1 and "Traceback" not in err
    assert str(bad) in err
    for needle in needles:
        assert needle in err, err


def test_a_bad_log_is_a_simgate_error_from_the_library_and_a_problem_from_the_manifest_check(host, log, tmp_path):
    bad = _drop("obs")(log, tmp_path / "bad.npz")
    spec = host.registries.policies.get(POLICY)
    with pytest.raises(SimgateError, match="key 'obs' is missing"):
        check_log(mjcf_env(host, spec), bad)
    spec = spec_with(host, write_contract(tmp_path, log="bad.npz"))
    message = check_manifest_log(spec, mjcf_env(host, spec))
    assert message.startswith(spec.contract.where("log", "file")) and "key 'obs' is missing" in message
    assert zipfile.is_zipfile(bad)


def test_a_policy_without_a_contract_or_unknown_is_exit_4(log, capsys):
    code, _, err = run(capsys, "quadruped-robust", log)
    assert code == 4 and "has no contract" in err
    code, _, err = run(capsys, "quadruped-robust-contrac", log)
    assert code == 4 and "did you mean 'quadruped-robust-contract'?" in err
    code, _, err = run(capsys, POLICY, log, "--tolerance", "0")
    assert code == 4 and "--tolerance" in err
