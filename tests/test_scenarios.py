"""Scenario files: strict schema, errors that point at the file and line, matrix expansion."""

import textwrap
from pathlib import Path

import pytest

from simgate.errors import SimgateError
from simgate.scenarios.expand import load_cases
from simgate.seeds import episode_entropy

GOOD = """\
name: slippery
env: balancebot
episodes: 20
horizon: 2.0
seed: 7
perturbations:
  - kind: scale_friction
    params: {sliding: 0.5}
  - kind: add_observation_noise
    params: {std: 0.01}
matrix:
  friction: {param: scale_friction.sliding, values: [0.5, 0.25]}
  noise: {param: add_observation_noise.scale, values: [1, 3]}
thresholds:
  min_success_rate: 0.7
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    directory = tmp_path / "scenarios"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text))
    return directory


def load(tmp_path, host, text, selected=(), candidates=("balancebot-lqr",)):
    return load_cases(write(tmp_path, text), tmp_path, host.registries, list(selected), list(candidates))


def error_of(tmp_path, host, text, **kw) -> str:
    with pytest.raises(SimgateError) as info:
        load(tmp_path, host, text, **kw)
    return str(info.value)


def test_matrix_expands_as_cross_product_with_readable_ids(tmp_path, host):
    cases = load(tmp_path, host, GOOD, candidates=["balancebot-lqr", "balancebot-lqr-onnx"])
    assert [c.id for c in cases] == [
        "slippery-friction=0.5-noise=1-balancebot-lqr", "slippery-friction=0.5-noise=1-balancebot-lqr-onnx",
        "slippery-friction=0.5-noise=3-balancebot-lqr", "slippery-friction=0.5-noise=3-balancebot-lqr-onnx",
        "slippery-friction=0.25-noise=1-balancebot-lqr", "slippery-friction=0.25-noise=1-balancebot-lqr-onnx",
        "slippery-friction=0.25-noise=3-balancebot-lqr", "slippery-friction=0.25-noise=3-balancebot-lqr-onnx",
    ]
    last = cases[-1]
    assert last.perturbations[0] == {"kind": "scale_friction", "params": {"sliding": 0.25}}
    assert last.perturbations[1] == {"kind": "add_observation_noise", "params": {"std": 0.01, "scale": 3}}
    assert last.thresholds == {"min_success_rate": 0.7, "deterministic": False, "regression_margin": 0.05,
                               "torque_regression_margin": 0.1}


def test_policy_option_overrides_candidates_and_keeps_the_env(tmp_path, host):
    cases = load(tmp_path, host, GOOD, selected=["balancebot-lqr-degraded"])
    assert {c.policy for c in cases} == {"balancebot-lqr-degraded"}


def test_episode_seed_depends_on_what_the_episode_is_not_on_the_policy():
    a = episode_entropy(7, "slippery", {"friction": 0.5}, 3)
    assert a == episode_entropy(7, "slippery", {"friction": 0.5}, 3)
    assert a != episode_entropy(7, "slippery", {"friction": 0.5}, 4)
    assert a != episode_entropy(7, "slippery", {"friction": 0.25}, 3)
    assert a != episode_entropy(8, "slippery", {"friction": 0.5}, 3)
    # a golden value: the same tomorrow, on any machine, in any process (no hash(), no order)
    assert episode_entropy(1, "flat", {}, 0) == int.from_bytes(
        __import__("hashlib").sha256(b'[1,"flat",{},0]').digest()[:16], "little")


def test_typo_in_perturbation_params_names_file_line_key_and_fix(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD.replace("params: {sliding: 0.5}", "params:\n      slidng: 0.5"))
    assert "scenarios/s.yaml:9:" in msg
    assert "unknown key 'slidng'" in msg and "did you mean 'sliding'?" in msg
    assert "scale_friction" in msg


def test_typo_in_top_level_key(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD.replace("episodes: 20", "episode: 20"))
    assert "scenarios/s.yaml:3: episode: unknown key 'episode'; did you mean 'episodes'?" in msg


def test_typo_fricton_as_matrix_target(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD.replace("scale_friction.sliding", "scale_fricton.sliding"))
    assert "scenarios/s.yaml:12:" in msg and "no perturbation of kind 'scale_fricton'" in msg


def test_unknown_env_suggests_the_closest(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD.replace("env: balancebot", "env: balancebott"))
    assert "scenarios/s.yaml:2: env: unknown env 'balancebott'; did you mean 'balancebot'?" in msg


def test_negative_episode_count(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD.replace("episodes: 20", "episodes: -5"))
    assert "scenarios/s.yaml:3: episodes: expected greater than 0, got -5" in msg


def test_empty_value_and_bad_range(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD.replace("horizon: 2.0", "horizon:"))
    assert "scenarios/s.yaml:4: horizon: the value is empty" in msg
    msg = error_of(tmp_path, host, GOOD.replace("{sliding: 0.5}", "{sliding: 0.5, torsional: [0.9, 0.2]}"))
    assert "scenarios/s.yaml:8:" in msg and "low ≤ high" in msg


def test_unknown_perturbation_kind(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD.replace("kind: add_observation_noise", "kind: add_obs_noise"))
    assert "scenarios/s.yaml:9: perturbations[1].kind: unknown perturbation 'add_obs_noise'" in msg


def test_duplicate_key_and_yaml_syntax(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD.replace("seed: 7", "seed: 7\nseed: 8"))
    assert "scenarios/s.yaml:6:" in msg and "appears twice" in msg
    msg = error_of(tmp_path, host, GOOD.replace("seed: 7", "seed: [7"))
    assert "scenarios/s.yaml:" in msg and "not valid YAML" in msg


def test_missing_policy_file_names_the_manifest_line(tmp_path, host):
    import dataclasses

    from simgate.plugin_manager import Registries

    spec = host.registries.policies.get("balancebot-lqr-onnx")
    regs = Registries(envs=host.registries.envs, perturbations=host.registries.perturbations)
    regs.policies.add(spec.name, dataclasses.replace(spec, file=spec.file.with_name("gone.onnx")))
    with pytest.raises(SimgateError) as info:
        load_cases(write(tmp_path, GOOD), tmp_path, regs, [], ["balancebot-lqr-onnx"])
    assert f"{spec.manifest}:{spec.line}: policy 'balancebot-lqr-onnx': file" in str(info.value)
    assert "gone.onnx does not exist" in str(info.value)


def test_unknown_policy_on_the_command_line(tmp_path, host):
    msg = error_of(tmp_path, host, GOOD, selected=["balancebot-lqr-onx"])
    assert msg == "--policy: unknown policy 'balancebot-lqr-onx'; did you mean 'balancebot-lqr-onnx'?"


def test_every_broken_file_is_reported_at_once(tmp_path, host):
    write(tmp_path, GOOD.replace("episodes: 20", "episodes: 0"), "a.yaml")
    write(tmp_path, GOOD.replace("name: slippery", "name: other").replace("env: balancebot", "env: nope"), "b.yaml")
    msg = error_of(tmp_path, host, GOOD.replace("name: slippery", "name: third"), )
    assert "scenarios/a.yaml:3" in msg and "scenarios/b.yaml:2" in msg


def test_model_aware_checks_name_the_line_and_suggest(tmp_path, host):
    from simgate.envs.info import EnvInfoCache

    text = GOOD.replace("params: {sliding: 0.5}", "params: {sliding: 0.5, geoms: [flor]}").replace(
        "params: {std: 0.01}", "params: {std: {imus: 0.01}}")
    with pytest.raises(SimgateError) as info:
        load_cases(write(tmp_path, text), tmp_path, host.registries, [], ["balancebot-lqr"],
                   EnvInfoCache(host.registries.envs))
    msg = str(info.value)
    assert "scenarios/s.yaml:8: perturbations[0].params.geoms: no geom named 'flor' in this model; did you mean 'floor'?" in msg
    assert "scenarios/s.yaml:10: perturbations[1].params.std: no observation group named 'imus'" in msg
    assert "did you mean 'imu'?" in msg


def test_a_matrix_value_can_be_a_sampled_range(tmp_path, host):
    text = GOOD.replace("values: [0.5, 0.25]", "values: [0.5, [0.4, 1.25]]")
    cases = load(tmp_path, host, text)
    assert [c.id for c in cases][2:4] == ["slippery-friction=0.4..1.25-noise=1-balancebot-lqr",
                                          "slippery-friction=0.4..1.25-noise=3-balancebot-lqr"]
    assert cases[2].perturbations[0]["params"] == {"sliding": [0.4, 1.25]}
