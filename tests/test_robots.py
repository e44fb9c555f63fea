"""A robot from its MJCF and YAML, driven through a policy's declarative contract.

The shipped quadruped re-expressed as ``envs/quadruped_mjcf/robot.yaml`` plus
``policies/quadruped/contract.yaml`` must be the same robot as the hand-written Python env: the
same actions at every control step (so the same observations, to the last bit, as the network
is deterministic), the same torques, work and ends, in both engines and under every
perturbation. Its own contract state (userdata slots the Python env does not have) makes the
full-state step hashes differ, so those are compared between the two engines only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simgate.engine.batched import BatchedEngine
from simgate.engine.reference import ReferenceEngine
from tests.test_batched_engine import ROBOTS, EVERY_KIND, assert_identical, build
from tests.test_engine import make_case

PY, YAML = "quadruped", "quadruped-mjcf"


@pytest.fixture(scope="module")
def pair(host):
    from simgate.runner import build_env

    regs = host.registries
    py_spec, yaml_spec = regs.policies.get("quadruped-robust"), regs.policies.get("quadruped-robust-contract")
    return (build_env(regs.envs.get(PY), py_spec), build_env(regs.envs.get(YAML), yaml_spec), py_spec.load())


def same_robot(a, b):
    """The same episodes but for the state hashes (the YAML env carries its contract state)."""
    for x, y in zip(a.episodes, b.episodes, strict=True):
        assert (x.index, x.seed, x.length, x.terminated, x.message) == (y.index, y.seed, y.length, y.terminated, y.message)
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.mean_abs_torque, y.mean_abs_torque)
        np.testing.assert_array_equal(x.peak_abs_torque, y.peak_abs_torque)
        np.testing.assert_array_equal(x.peak_joint_speed, y.peak_joint_speed)
        assert (x.work, x.mass, x.saturation) == (y.work, y.mass, y.saturation)


def test_the_contract_reproduces_the_python_env_bit_for_bit(pair):
    py_env, yaml_env, policy = pair
    assert (yaml_env.observation_size, yaml_env.action_size, yaml_env.control_hz) == (34, 12, 50)
    case = make_case(env=PY, policy="quadruped-robust", horizon=4.0, episodes=6)
    python = ReferenceEngine(py_env, policy, [], 12).run(case, range(6))
    reference = ReferenceEngine(yaml_env, policy, [], 12).run(case, range(6))
    same_robot(python, reference)
    assert all(len(e.actions) == 200 for e in reference.episodes)  # it walked the 4 s, as in the Python env
    assert_identical(reference, BatchedEngine(yaml_env, policy, [], 12, nthread=2).run(case, range(6)))
    assert_identical(reference, BatchedEngine(yaml_env, policy, [], 12, nthread=1).run(case, range(6)))


def _kinds():
    params = {**EVERY_KIND, **ROBOTS["quadruped"]["params"]}
    return sorted(k for k, v in params.items() if v is not None), params


@pytest.mark.parametrize("kind", _kinds()[0])
def test_every_perturbation_works_on_the_yaml_robot_unchanged(host, pair, kind):
    py_env, yaml_env, policy = pair
    params = _kinds()[1][kind]
    case = make_case(env=PY, policy="quadruped-robust", horizon=1.0, episodes=4)
    python = ReferenceEngine(py_env, policy, [build(host, kind, params)], 12).run(case, range(4))
    reference = ReferenceEngine(yaml_env, policy, [build(host, kind, params)], 12).run(case, range(4))
    same_robot(python, reference)
    batched = BatchedEngine(yaml_env, policy, [build(host, kind, params)], 12, nthread=2, chunk=3).run(case, range(4))
    assert_identical(reference, batched)


def test_a_candidate_and_its_baseline_may_carry_different_contracts(host, pair):
    """The same network under another contract is another policy: a wrong filter constant walks
    differently, and each env binds its own policy's contract."""
    from simgate.robots.load import contract_file
    from simgate.runner import build_env, env_for

    _, yaml_env, policy = pair
    regs = host.registries
    spec = regs.policies.get("quadruped-robust-contract")
    data = spec.contract.contract.model_dump(exclude_none=True)
    data["action"]["filter_alpha"] = 0.5
    import tempfile
    from pathlib import Path

    import yaml

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contract.yaml"
        path.write_text(yaml.safe_dump(data))
        other = dataclasses.replace(spec, name="filtered", contract=contract_file(path, "contract.yaml"))
    filtered = env_for(yaml_env, other)
    assert filtered is not yaml_env and filtered.contract is other.contract
    assert env_for(build_env(regs.envs.get(YAML), spec), spec).contract is spec.contract
    case = make_case(env=PY, policy="quadruped-robust", horizon=1.0, episodes=2)
    a = ReferenceEngine(yaml_env, policy, [], 12).run(case, range(2))
    b = ReferenceEngine(filtered, policy, [], 12).run(case, range(2))
    assert not np.array_equal(a.episodes[0].actions[5:], b.episodes[0].actions[5:])


def test_the_hold_baseline_sends_the_neutral_action(host, pair):
    from simgate.policies import hold

    _, yaml_env, _ = pair
    policy = hold.for_env(yaml_env)
    case = make_case(env=PY, policy="hold", horizon=2.0, episodes=3)
    episodes = ReferenceEngine(yaml_env, policy, [], 12).run(case, range(3)).episodes
    assert all(np.array_equal(e.actions, np.zeros_like(e.actions)) for e in episodes)  # offset mapping: pose = 0
    assert all(e.terminated is None for e in episodes)  # holding the standing pose stands
