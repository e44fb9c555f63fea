"""Issue 6 end to end: sequential stopping, the paired comparison with the promoted policy,
verdict.json and its exit code, and the episode cache (re-run, kill and resume), all through a
real `pytest suites/` in a subprocess."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_end_to_end import REPO, SMALL, gate, only, results_only, summary

SEQUENTIAL = REPO / "tests" / "data" / "sequential"


def verdict(directory):
    return json.loads((directory / "verdict.json").read_text())


def test_a_second_run_recomputes_nothing(tmp_path):
    first = gate("-n", "2", "--scenarios", str(SMALL), "--simgate-reports", str(tmp_path), "--policy", "balancebot-lqr-onnx")
    assert first.returncode == 0, first.stdout[-2000:]
    a = summary(tmp_path)
    assert sum(c["episodes_run"] for c in a["cases"].values()) > 0
    second = gate("-n", "2", "--scenarios", str(SMALL), "--simgate-reports", str(tmp_path), "--policy", "balancebot-lqr-onnx")
    assert second.returncode == 0
    b = summary(tmp_path)
    assert sum(c["episodes_run"] for c in b["cases"].values()) == 0  # candidate and baseline both cached
    assert all(c["episodes_cached"] > 0 for c in b["cases"].values())
    assert results_only(a) == results_only(b)


def test_a_changed_policy_file_invalidates_exactly_its_entries(tmp_path):
    from simgate.cache import EpisodeCache

    cache = EpisodeCache(tmp_path, {"policy": {"sha256": "a"}, "seed": 1})
    other = EpisodeCache(tmp_path, {"policy": {"sha256": "b"}, "seed": 1})
    same = EpisodeCache(tmp_path, {"seed": 1, "policy": {"sha256": "a"}})  # key order does not matter
    assert cache.key(3) == same.key(3) != other.key(3) and cache.key(3) != cache.key(4)


def test_cache_round_trip_is_exact_and_damage_is_recomputed(tmp_path):
    from simgate.cache import EpisodeCache
    from simgate.engine.rollouts import Episode

    ep = Episode(index=7, seed=2**127 + 5, success=False, length=3, ret=-0.1 / 3, progress=float("nan"),
                 terminated="fell", message="why", mean_abs_torque=np.array([0.1, 1 / 3]),
                 peak_abs_torque=np.array([1.0, 2.0]), step_hashes=np.array([1, 2**64 - 1, 3], dtype=np.uint64),
                 actions=np.random.default_rng(0).standard_normal((3, 2)), work=1 / 7, mass=1.75, signals={"x": 0.5})
    cache = EpisodeCache(tmp_path, {"k": 1})
    cache.put(ep)
    back = cache.get(7)
    assert back.seed == ep.seed and back.ret == ep.ret and np.isnan(back.progress) and back.signals == {"x": 0.5}
    for name in ("mean_abs_torque", "peak_abs_torque", "step_hashes", "actions"):
        assert np.array_equal(getattr(back, name), getattr(ep, name)) and getattr(back, name).dtype == getattr(ep, name).dtype
    assert not list(tmp_path.rglob(".tmp-*"))  # nothing left behind by the atomic write
    cache.path(7).write_bytes(cache.path(7).read_bytes()[:50])  # a damaged entry reads as missing
    assert cache.get(7) is None and cache.get(8) is None


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    chosen = only(tmp_path / "scenarios", "pushes.yaml", "slippery.yaml", "latency.yaml", source=REPO / "scenarios")
    args = ["--scenarios", str(chosen), "--policy", "balancebot-lqr"]
    assert gate("-n", "2", "--simgate-reports", str(whole), *args).returncode == 0
    cmd = [sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider", "-n", "2", "--simgate-reports", str(part), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((part / "cache").rglob("*.npz"))) < 150:
        time.sleep(0.2)
    import os

    os.killpg(proc.pid, signal.SIGKILL)  # the whole session: controller and workers, mid-write perhaps
    proc.wait()
    done = len(list((part / "cache").rglob("*.npz")))
    assert 150 <= done < 1000, done  # killed midway
    resumed = gate("-n", "2", "--simgate-reports", str(part), *args)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    document = summary(part)
    assert sum(c["episodes_cached"] for c in document["cases"].values()) >= 150  # the first run's work was kept
    assert results_only(document) == results_only(summary(whole))


def test_the_subtle_regression_is_flagged_by_the_paired_test_with_fewer_episodes(tmp_path):
    pushes = only(tmp_path / "scenarios", "pushes.yaml", source=REPO / "scenarios")
    run = gate("-n", "2", "--scenarios", str(pushes), "--simgate-reports", str(tmp_path),
               "--policy", "balancebot-lqr-sluggish", "--baseline", "balancebot-lqr")
    assert run.returncode == 1
    document = verdict(tmp_path)
    assert document["promote"] is False
    candidate = document["candidates"]["balancebot-lqr-sluggish"]
    assert "pushes-push_n=10-balancebot-lqr-sluggish" in candidate["regression_alarms"]
    family = candidate["families"]["regression"]
    assert family["correction"] == "Holm" and family["size"] == 2 and family["level"] == 0.05
    flagged = [r for r in candidate["requirements"] if r["kind"] == "not_worse" and r["case"].startswith("pushes-push_n=10")]
    assert flagged[0]["finding"] == "regression (Holm-confirmed)"
    case = summary(tmp_path)["cases"]["pushes-push_n=10-balancebot-lqr-sluggish"]
    [paired] = [r for r in case["requirements"] if r["kind"] == "not_worse"]
    numbers = paired["numbers"]
    assert numbers["n01"] == 0 and numbers["n10"] > 15  # it fails where the baseline succeeds, never the reverse
    assert numbers["episodes_to_flag_paired"] < numbers["episodes_to_flag_unpaired"]
    assert paired["outcome"] == "PASS" and numbers["uncorrected_outcome"] == "FAIL"  # a finding, not a case verdict
    assert 0 < numbers["detectable_drop_90"] < 0.3
    assert "promotion: FAIL" in run.stdout
    assert run.stdout.rstrip().splitlines()[-1] == "simgate: FAIL (exit 1): balancebot-lqr-sluggish FAIL"


def test_an_unchanged_policy_compared_with_itself_is_promoted(tmp_path):
    run = gate("-n", "2", "--scenarios", str(SMALL), "--simgate-reports", str(tmp_path),
               "--policy", "balancebot-lqr", "--baseline", "balancebot-lqr")
    assert run.returncode == 0, run.stdout[-2000:]
    document = verdict(tmp_path)
    assert document["promote"] is True and document["candidates"]["balancebot-lqr"]["regression_alarms"] == []
    assert "promotion: PASS" in run.stdout
    assert run.stdout.rstrip().splitlines()[-1] == "simgate: PASS (exit 0): balancebot-lqr PASS"


def test_sequential_case_stops_early_and_reports_its_guarantee(tmp_path):
    run = gate("-n", "0", "--scenarios", str(SEQUENTIAL), "--simgate-reports", str(tmp_path),
               "--policy", "balancebot-lqr", "--baseline", "none")
    assert run.returncode == 0, run.stdout[-2000:]
    case = summary(tmp_path)["cases"]["flat_sequential-balancebot-lqr"]
    [req] = [r for r in case["requirements"] if r["kind"] == "success_rate"]
    n = req["numbers"]
    # no failures: the (calibrated) SPRT PASS line is crossed at n = 39, so one batch of 32 is not enough
    assert req["outcome"] == "PASS" and n["n"] == case["episodes"] == 39
    assert case["episodes_run"] == 64  # two batches of 32 were run; the decision used the first n
    assert n["false_pass_at_p0"] <= 0.05 and n["expected_n_at_p1"] < n["fixed_n"]
    assert "exact false PASS" in req["bound"] and "same power" in req["bound"]
    assert n["judged_episodes"] == 32  # the other requirements: the first batch, declared before the run


def test_a_sequential_block_without_a_rate_is_a_clear_error(tmp_path):
    (tmp_path / "s.yaml").write_text("name: s\nenv: balancebot\nepisodes: 10\nhorizon: 1.0\n"
                                     "sequential: {method: sprt, p1: 0.95}\n")
    run = gate("-n", "0", "--scenarios", str(tmp_path))
    assert run.returncode == 4 and "set it too" in (run.stdout + run.stderr)
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize("q", [0.0, 0.6])
def test_a_policy_of_known_failure_rate_through_the_engine(host, q):
    """A scripted policy that gives up on a seeded share q of the episodes, through run_case."""
    from simgate.policies.spec import PolicySpec
    from simgate.runner import run_case
    from tests.test_engine import make_case

    name = f"gives-up-{q:g}"
    if name not in host.registries.policies.names():
        host.registries.policies.add(name, PolicySpec(name=name, env="balancebot", format="scripted",
                                                      observation_size=4, action_size=1,
                                                      entry=f"tests.test_verdicts_end_to_end:gives_up_{int(q * 10)}"))
    case = make_case(policy=name, episodes=200, horizon=6.0, thresholds={"min_success_rate": 0.9},
                     sequential={"method": "sprt", "p1": 0.97, "beta": 0.1, "batch": 32})
    result = run_case(case, host, "auto", None)
    [req] = result.requirements
    if q == 0.0:
        assert req.outcome == "PASS" and req.numbers["n"] == 39  # as in the sequential scenario test
    else:
        # decided inside the first batch, by futility: reported as what it is, not as a FAIL
        assert req.outcome == "INCONCLUSIVE" and req.numbers["n"] < 32 and req.numbers["stop"] == "futility"
        assert "p1 not reached" in req.observed


class _GivesUp:
    """Balances, except on episodes whose initial pitch's digits fall below q: there it drives the
    wheel flat out from the start, and the robot falls. Deterministic per episode seed."""

    def __init__(self, q):
        from policies.balancebot_lqr.controller import make_policy

        self.inner, self.q = make_policy(), q
        self.quit: dict[bytes, bool] = {}

    def act(self, obs):
        out = np.array(self.inner.act(obs), dtype=np.float64)
        for row, o in enumerate(obs):
            # decided once per episode from its first observation, then remembered by its encoder reading
            draw = (abs(float(o[0])) * 1e6) % 1.0
            if draw < self.q:
                out[row] = 1.0
        return out


def gives_up_0():
    return _GivesUp(0.0)


def gives_up_6():
    return _GivesUp(0.6)


def test_an_impossible_task_is_named_as_such(host):
    """The far reach zone lies partly outside the arm's workspace: the report says the scenario,
    not the policy, caps the success rate."""
    from simgate.reporting.message import case_message
    from simgate.runner import run_case
    from tests.test_engine import make_case

    case = make_case(env="arm7-reach-far", policy="arm7-ik-far", episodes=8, horizon=3.0,
                     thresholds={"min_success_rate": 0.95}, scenario="reach_far")
    result = run_case(case, host, "auto", None)
    assert 0.3 < result.feasibility < 0.65  # about half the zone is reachable (envs/arm7/reachability.py)
    message = case_message(result)
    assert "INFEASIBLE: success > 0.95 cannot be reached here whatever the policy" in message
    nominal = run_case(make_case(env="arm7-reach", policy="arm7-ik", episodes=4, horizon=3.0, scenario="reach",
                                 thresholds={"min_success_rate": 0.95}), host, "auto", None)
    assert nominal.feasibility == 1.0 and "INFEASIBLE" not in case_message(nominal)


def test_replay_reproduces_the_suites_episode_bit_for_bit(tmp_path):
    """`python -m simgate replay` re-runs one episode on the reference engine and checks it
    against the suite's (batched, cached) result."""
    run = gate("-n", "2", "--scenarios", str(SMALL), "--simgate-reports", str(tmp_path), "--policy",
               "balancebot-lqr-degraded", "--baseline", "none", "-k", "flat")
    assert run.returncode == 3  # -k: INVALID
    assert "replay the worst episode: python -m simgate replay flat-balancebot-lqr-degraded " in run.stdout
    cmd = [sys.executable, "-m", "simgate", "replay", "flat-balancebot-lqr-degraded", "4", "--scenarios",
           str(SMALL.relative_to(REPO)), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "replays")]
    replayed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    written = json.loads(replayed.stdout)
    assert written["matches_suite_run"] is True and written["terminated"] is None
    with np.load(written["trajectory"]) as trajectory:
        assert trajectory["qpos"].shape[0] == written["length"] + 1  # the start and every control step
    wrong = subprocess.run([sys.executable, "-m", "simgate", "replay", "flat-balancebot-lqr-degraded-x", "4"],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert wrong.returncode == 4 and "ERROR:" in wrong.stderr and "Traceback" not in wrong.stderr
