"""Locomotion metrics: exact values on hand-made episodes, physical values on real ones."""

import numpy as np
import pytest

from simgate.engine.rollouts import Episode, Rollouts
from simgate.metrics import effort, episode
from tests.test_engine import env, lqr, make_case  # noqa: F401, F811  (fixtures)


def _episode(index, length, progress, work, mass, actions, terminated=None, signals=None):
    return Episode(index=index, seed=0, success=terminated is None, length=length, ret=0.0, progress=progress,
                   terminated=terminated, message=None, mean_abs_torque=np.zeros(1), peak_abs_torque=np.zeros(1),
                   step_hashes=np.zeros(length, dtype=np.uint64), actions=np.asarray(actions, dtype=float),
                   work=work, mass=mass, signals=signals or {})


def _rollouts(unit="m"):
    eps = [_episode(0, 100, 2.0, 39.24, 2.0, [[0.0], [0.5], [0.0]]),
           _episode(1, 50, 0.0, 10.0, 2.0, [[1.0], [1.0]], terminated="fell", signals={"err": 0.25}),
           _episode(2, 0, 0.0, 0.0, 2.0, np.zeros((0, 1)), terminated="policy_error")]
    return Rollouts(eps, ["j"], 0.02, 100, unit)


def test_power_cost_of_transport_and_action_rate_by_hand():
    r = _rollouts()
    np.testing.assert_allclose(effort.mean_power(r), [39.24 / 2.0, 10.0 / 1.0, np.nan])
    # 39.24 J over 2 m by 2 kg: 39.24 / (2 * 9.81 * 2) = 1
    np.testing.assert_allclose(effort.cost_of_transport(r), [1.0, np.nan, np.nan])
    np.testing.assert_allclose(effort.action_rate(r), [0.5, 0.0, np.nan])
    np.testing.assert_allclose(episode.time_to_fall(r), [np.nan, 1.0, np.nan])
    assert list(episode.signals(r)) == ["err"]
    np.testing.assert_allclose(episode.signals(r)["err"], [np.nan, 0.25, np.nan])


def test_cost_of_transport_needs_a_distance():
    assert np.isnan(effort.cost_of_transport(_rollouts(unit="fraction"))).all()


def test_work_equals_the_integral_of_measured_power(env, lqr):  # noqa: F811
    """The engine's work is the sum of |force x velocity| dt, checked against an independent loop."""
    import mujoco

    from simgate.engine.reference import ReferenceEngine

    engine = ReferenceEngine(env, lqr, [], 1)
    case = make_case(episodes=1, horizon=1.0)
    ep = engine.run(case, [0]).episodes[0]
    _, model, data, _ = engine.start_episode(case, 0, 50)
    work = 0.0
    for _ in range(50):
        env.apply_action(model, data, lqr.act(env.observe(model, data)[None])[0])
        for _ in range(engine.frame_skip):
            mujoco.mj_step(model, data)
            work += float(np.abs(data.actuator_force * data.actuator_velocity).sum()) * model.opt.timestep
    assert ep.work == pytest.approx(work, rel=1e-12) and ep.work > 0
    assert ep.mass == pytest.approx(float(model.body_mass.sum()))
    assert ep.signals["abs_pitch"] >= 0
