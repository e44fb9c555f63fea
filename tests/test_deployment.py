"""Deployment checks: inference latency, safety limits, frequency response, MCAP logs."""

import dataclasses
import time

import numpy as np
import pytest

from simgate import latency, stats, verdict
from simgate.policies.spec import PolicySpec
from simgate.runner import run_case
from tests.test_engine import make_case


class Sleepy:
    """A balance controller that takes 10 ms per call: too slow for a 5 ms budget."""

    def act(self, obs):
        time.sleep(0.010)
        return np.zeros((len(obs), 1))


def sleepy(spec=None):
    return Sleepy()


def _register(host, name, entry, env="balancebot", sizes=(4, 1)):
    if name not in host.registries.policies.names():
        host.registries.policies.add(name, PolicySpec(name=name, env=env, format="scripted", observation_size=sizes[0],
                                                      action_size=sizes[1], entry=entry))


@pytest.fixture
def few_calls(monkeypatch):
    # a sleeping policy at the default 3200 calls would take 32 s; 60 calls show the same thing
    monkeypatch.setattr(latency, "CALLS", 60)
    monkeypatch.setattr(latency, "WARMUP", 5)
    monkeypatch.setattr(latency, "EPISODES", 1)


def _latency(result):
    [req] = [r for r in result.requirements if r.kind == verdict.INFERENCE_LATENCY]
    return req


def test_a_policy_sleeping_10ms_fails_a_5ms_p99(host, few_calls):
    _register(host, "sleepy", "tests.test_deployment:sleepy")
    case = make_case(policy="sleepy", episodes=1, horizon=0.2,
                     thresholds={"min_success_rate": 0.5, "max_inference_ms": {"p99": 5.0}})
    result = run_case(case, host, "auto", None)
    req = _latency(result)
    assert req.outcome == stats.FAIL and result.outcome == stats.FAIL
    assert req.numbers["p99_ms"] >= 10.0 and req.numbers["over"] == ["p99"]
    assert req.numbers["calls"] == 60 and req.numbers["policy"] == "sleepy"


def test_the_quadruped_onnx_policy_passes_5ms(host):
    from simgate.scenarios.expand import load_cases
    from tests.conftest import REPO

    [case] = [c for c in load_cases(REPO / "scenarios", REPO, host.registries, ["quadruped-robust"], [], None)
              if c.scenario == "quadruped_flat"]
    case = dataclasses.replace(case, episodes=2, baseline=None,
                               thresholds={"min_success_rate": 0.5, "max_inference_ms": {"p50": 5.0, "p99": 5.0}})
    result = run_case(case, host, "auto", None)
    req = _latency(result)
    assert req.outcome == stats.PASS, req.observed
    assert req.numbers["calls"] == latency.CALLS and req.numbers["observations"] == 2 * 300
    assert 0 < req.numbers["p50_ms"] <= req.numbers["p99_ms"] < 5.0


def test_the_latency_requirement_compares_the_quantiles_it_is_given():
    m = latency.Latency(p50_ms=1.0, p99_ms=6.0, max_ms=9.0, calls=100, warmup=10, observations=50)
    assert verdict.latency_requirement(m, {"p50": 2.0}, "p").outcome == stats.PASS
    failed = verdict.latency_requirement(m, {"p50": 2.0, "p99": 5.0}, "p")
    assert failed.outcome == stats.FAIL and failed.numbers["over"] == ["p99"]


def test_latency_thresholds_need_a_limit():
    from pydantic import ValidationError

    from simgate.scenarios.schema import Thresholds

    with pytest.raises(ValidationError, match="p50, p99"):
        Thresholds.model_validate({"max_inference_ms": {}})
    assert Thresholds.model_validate({"max_inference_ms": {"p99": 5}}).requires_something()
