"""Hard per-step limits (issue 25.5): a scenario's hard_limits end an episode at the first control
step one is exceeded, as the failure mode hard_limit with the step and the value, identically in
both engines, apart from the statistical thresholds."""

import json

import numpy as np
import pytest

from simgate.engine.batched import BatchedEngine
from simgate.engine.reference import ReferenceEngine
from simgate.errors import InputError
from simgate.limits import HARD_LIMIT, HardLimits
from tests.test_batched_engine import assert_identical, bot, build  # noqa: F401 (bot: a fixture)
from tests.test_end_to_end import gate
from tests.test_engine import make_case

PUSHES = {"body": "chassis", "force": [5, 20], "interval": [0.3, 0.6], "direction": "x"}


def test_the_rows_name_what_was_exceeded_first():
    class Model:  # no free joint is needed for actuator limits
        njnt = 0

    limits = HardLimits({"joint_torque": {"b": 2.0}, "joint_speed": 10.0}, Model(), ["a", "b"])
    forces = np.array([[[1.0, 1.0], [1.0, 2.5]], [[9.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    speeds = np.array([[[0.0, 0.0]] * 2, [[0.0, 11.0]] * 2, [[0.0, 0.0]] * 2])
    out = limits.rows(forces, speeds, np.zeros((3, 1)), np.ones((3, 2)))
    assert out == ["b |torque| 2.5 > 2", "b |speed| 11 > 10", None]  # a's torque has no limit (inf)
    # joint units: the actuator's force times its gear, its velocity over it
    assert limits.rows(forces[:1], speeds[:1], np.zeros((1, 1)), np.array([[1.0, 0.5]])) == [None]
    with pytest.raises(InputError, match="names 'kneee', which has no actuator; did you mean 'knee'"):
        HardLimits({"joint_torque": {"kneee": 1.0}}, Model(), ["knee", "hip"])


def test_both_engines_end_the_same_episodes_at_the_same_step(host, bot):
    policy = host.registries.policies.get("balancebot-lqr").load()
    make = lambda: [build(host, "apply_pushes", PUSHES)]  # noqa: E731
    free = make_case(horizon=2.0, episodes=8)
    peaks = [float(e.peak_abs_torque.max()) for e in ReferenceEngine(bot, policy, make(), 1).run(free, range(8)).episodes]
    limit = float(np.median(peaks))  # about half the episodes reach it
    case = make_case(horizon=2.0, episodes=8, hard_limits={"joint_torque": limit})
    reference = ReferenceEngine(bot, policy, make(), 1).run(case, range(8))
    batched = BatchedEngine(bot, policy, make(), 1, nthread=2, chunk=3).run(case, range(8))
    assert_identical(reference, batched)
    for episode, peak in zip(reference.episodes, peaks):
        if peak > limit:  # the limit ended it, at the step where the torque first went past it
            assert episode.terminated == HARD_LIMIT and not episode.success, episode.message
            assert episode.message.startswith("hard limit: wheel |torque| ") and "at control step" in episode.message
            assert episode.length < free.horizon / reference.control_dt
        else:
            assert episode.terminated != HARD_LIMIT


def test_a_floating_base_tilt_limit_ends_the_quadruped_the_same_way_in_both_engines(host):
    from simgate.runner import build_env

    env = build_env(host.registries.envs.get("quadruped"))
    policy = host.registries.policies.get("quadruped-nominal").load()
    case = make_case(env="quadruped", policy="quadruped-nominal", horizon=2.0, episodes=6,
                     hard_limits={"base_tilt_deg": 4.0, "workspace": {"z": [0.05, 1.0]}})
    reference = ReferenceEngine(env, policy, [], env.action_size).run(case, range(6))
    batched = BatchedEngine(env, policy, [], env.action_size, nthread=2).run(case, range(6))
    assert_identical(reference, batched)
    ended = [e for e in reference.episodes if e.terminated == HARD_LIMIT]
    assert ended and all("base tilt" in e.message or "base z" in e.message for e in ended)


def quadruped_case(**limits):
    return make_case(env="quadruped", policy="quadruped-nominal", horizon=2.0, episodes=6,
                     hard_limits=limits or None)


def test_a_contact_force_limit_ends_the_same_episodes_in_both_engines_and_changes_no_physics(host):
    from simgate.runner import build_env

    env = build_env(host.registries.envs.get("quadruped"))
    policy = host.registries.policies.get("quadruped-nominal").load()
    free = ReferenceEngine(env, policy, [], env.action_size).run(quadruped_case(), range(6))
    # the sensors the limit reads are added to the model: a limit never reached leaves every bit as it was
    never = quadruped_case(contact_force={"FL_calf": 1e9})
    sensed = ReferenceEngine(env, policy, [], env.action_size, hard_limits=never.hard_limits).run(never, range(6))
    assert all(a.reproduced_by(b) for a, b in zip(free.episodes, sensed.episodes))
    # the front left foot's landing and later steps: about 15-35 N, so 30 N ends some episodes only
    case = quadruped_case(contact_force={"FL_calf": 30.0})
    reference = ReferenceEngine(env, policy, [], env.action_size, hard_limits=case.hard_limits).run(case, range(6))
    batched = BatchedEngine(env, policy, [], env.action_size, nthread=2, hard_limits=case.hard_limits).run(case, range(6))
    assert_identical(reference, batched)
    ended = [e for e in reference.episodes if e.terminated == HARD_LIMIT]
    assert 0 < len(ended) < 6, [e.message for e in reference.episodes]
    for episode in ended:
        assert episode.message.startswith("hard limit: FL_calf contact force ") and " N > 30 N at control step " in episode.message
        value = float(episode.message.split("contact force ")[1].split(" N")[0])
        assert value > 30.0
    with pytest.raises(InputError, match="names 'FL_calff', which is no body of the model; did you mean 'FL_calf'"):
        ReferenceEngine(env, policy, [], env.action_size, hard_limits={"contact_force": {"FL_calff": 30.0}})
    with pytest.raises(ValueError, match="no contact sensors for FL_calf"):  # an engine built without them
        ReferenceEngine(env, policy, [], env.action_size).run(case, range(1))


def test_a_contact_force_limit_must_name_bodies_with_positive_forces():
    from pydantic import ValidationError

    from simgate.scenarios.schema import HardLimitsSpec

    assert HardLimitsSpec(contact_force={"wheel": 12.5}).contact_force == {"wheel": 12.5}
    for bad in ({}, {"wheel": 0.0}, {"wheel": -3.0}, 40.0):
        with pytest.raises(ValidationError):
            HardLimitsSpec(contact_force=bad)


def gated_case(tmp_path, name: str, text: str):
    """The balance bot's case of one scenario file, run through the gate: (its record, the run)."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / f"{name}.yaml").write_text(f"name: {name}\nenv: balancebot\nseed: 2\nbenign: false\n" + text)
    run = gate("-n", "0", "--scenarios", str(scenarios), "--simgate-reports", str(tmp_path / "reports"),
               "--policy", "balancebot-lqr", "--baseline", "none")
    return json.loads((tmp_path / "reports" / "summary.json").read_text())["cases"][f"{name}-balancebot-lqr"], run


def test_a_scenario_with_hard_limits_reports_them_as_a_failure_mode(tmp_path):
    case, run = gated_case(tmp_path, "limited", "episodes: 10\nhorizon: 3.0\nperturbations:\n"
        "  - kind: apply_pushes\n    params: {body: chassis, force: 20, duration: 0.1, interval: [0.3, 0.6], direction: x}\n"
        "hard_limits:\n  joint_torque: 0.05\nthresholds:\n  min_success_rate: 0.5\n")
    assert case["failure_modes"] == {HARD_LIMIT: 10} and case["outcome"] == "FAIL", run.stdout[-3000:]
    assert "hard limit: wheel |torque|" in case["examples"][HARD_LIMIT]
    assert "hard_limit: e.g. episode" in run.stdout


def test_the_video_s_end_names_the_limit_and_its_step():
    """The episode ends at the control step a limit is exceeded, so the held last frame is that
    step: it carries the episode's own words (which limit, the value, the step) on a second line."""
    pytest.importorskip("PIL")
    from simgate.reporting.video import HEIGHT, WIDTH, mark_end

    frame = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    plain = mark_end([frame], 0.04, False, HARD_LIMIT, HARD_LIMIT, fps=5)[-1]
    marked = mark_end([frame], 0.04, False, HARD_LIMIT, HARD_LIMIT, fps=5,
                      detail="hard limit: wheel |torque| 0.05256 > 0.05 at control step 2 (t=0.04 s)")[-1]
    red = lambda image: int(((image[..., 0] == 200) & (image[..., 1] == 30)).sum())  # noqa: E731
    assert red(marked) > red(plain) + 2000  # a second text line on the failure's colour
    assert (marked[:10] == (200, 30, 30)).all()  # the red border
    assert red(mark_end([frame], 0.04, True, None, None, fps=5, detail="x")[-1]) == 0  # a success has none


def test_a_scenario_s_contact_force_limit_reaches_the_engine_through_the_gate(tmp_path):
    """The rig builds the engine with the case's limits: the balance bot's ~17 N weight rests on its
    wheel, so a 10 N limit on the wheel ends every episode at its first control steps."""
    case, run = gated_case(tmp_path, "touch", "episodes: 6\nhorizon: 1.0\n"
                           "hard_limits:\n  contact_force: {wheel: 10}\nthresholds:\n  min_success_rate: 0.5\n")
    assert case["failure_modes"] == {HARD_LIMIT: 6} and case["outcome"] == "FAIL", run.stdout[-3000:]
    assert "hard limit: wheel contact force" in case["examples"][HARD_LIMIT]
