"""Time limits without signals into waits: a case's work runs on a watched daemon thread; a hung
policy call (Python or native) is abandoned and the caller gets TimeLimit; Ctrl-C while a case
hangs ends the wait at once; the lanes of an abandoned case stop at their next policy call."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from simgate.engine.batched import BatchedEngine
from simgate.watchdog import GuardedPolicy, TimeLimit, Watchdog
from tests.test_engine import make_case

LIBC = ctypes.CDLL(None)


class NativeHang:
    """A policy that blocks in a C call (libc ``sleep``) from its third call on."""

    def __init__(self, seconds: int = 120):
        self.calls, self.seconds = 0, seconds

    def act(self, obs):
        self.calls += 1
        if self.calls >= 3:
            LIBC.sleep(self.seconds)
        return np.zeros((len(obs), 1))


class Spins:
    def __init__(self):
        self.calls = 0

    def act(self, obs):
        self.calls += 1
        if self.calls >= 3:
            while True:
                pass
        return np.zeros((len(obs), 1))


def _bot():
    from envs.balancebot.env import BalanceBot

    return BalanceBot()


@pytest.mark.parametrize("nthread", [1, 2])
def test_a_policy_hung_in_a_native_call_is_abandoned_as_a_timeout(nthread):
    dog = Watchdog(None, 0.5)
    engine = BatchedEngine(_bot(), GuardedPolicy(NativeHang(), dog), [], 1, nthread=nthread, chunk=2)
    with pytest.raises(TimeLimit, match="policy_timeout"):
        dog.run(engine.run, make_case(episodes=4, horizon=5.0), range(4))
    assert dog.cancelled.is_set()
    with pytest.raises(TimeLimit):  # a spent watchdog refuses more work (its policy may still hang)
        dog.run(lambda: "more")


def test_a_policy_spinning_in_python_is_stopped_not_only_abandoned():
    dog = Watchdog(None, 0.5)
    policy = Spins()
    engine = BatchedEngine(_bot(), GuardedPolicy(policy, dog), [], 1, nthread=1)
    before = set(threading.enumerate())
    with pytest.raises(TimeLimit):
        dog.run(engine.run, make_case(episodes=2, horizon=5.0), range(2))
    case_threads = [t for t in threading.enumerate() if t.name == "simgate-case" and t not in before]
    assert len(case_threads) == 1
    for thread in case_threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in case_threads)  # no thread left spinning for the rest of the run


def test_an_abandoned_case_s_lanes_stop_at_their_next_policy_call():
    calls_after: list[int] = []
    dog = Watchdog(0.5, None)

    class Slow:
        def act(self, obs):
            if dog.cancelled.is_set():
                calls_after.append(1)
            time.sleep(0.02)
            return np.zeros((len(obs), 1))

    engine = BatchedEngine(_bot(), GuardedPolicy(Slow(), dog), [], 1, nthread=2, chunk=2)
    before = set(threading.enumerate())
    with pytest.raises(TimeLimit, match="case_timeout"):
        dog.run(engine.run, make_case(episodes=4, horizon=60.0), range(4))  # 6,000 calls: never done in 0.5 s
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith(("simgate-lane", "simgate-case")):
            thread.join(timeout=60)
            assert not thread.is_alive()
    assert calls_after == []  # a cancelled guard never calls the policy again


def test_the_work_s_result_and_its_exception_reach_the_caller():
    assert Watchdog(None, None).run(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ValueError, match="bad"):
        Watchdog(None, None).run(lambda: (_ for _ in ()).throw(ValueError("bad")))


def test_a_paused_wait_is_not_case_time():
    dog = Watchdog(1.0, None)

    def waits_elsewhere():
        with dog.paused():
            time.sleep(2.0)  # twice the case's limit, all of it waiting for a cluster
        return "ok"

    assert dog.run(waits_elsewhere) == "ok"


def test_no_signal_timer_competes_with_another_sigalrm_user():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        Watchdog(30.0, 30.0).run(time.sleep, 0.6)
        deadline = time.monotonic() + 60
        while not fired and time.monotonic() < deadline:  # delivered however loaded the machine
            time.sleep(0.05)
        assert fired == [signal.SIGALRM]  # the other user's alarm was neither cancelled nor replaced
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_while_a_native_call_hangs_ends_the_wait(repo, tmp_path, sig):
    script = tmp_path / "hang.py"
    script.write_text(textwrap.dedent(f"""
        import ctypes, signal, sys
        sys.path.insert(0, {str(repo)!r})
        from simgate.watchdog import Watchdog

        def terminated(signum, frame):
            raise KeyboardInterrupt("SIGTERM")

        signal.signal(signal.SIGTERM, terminated)  # as simgate's controller does

        def hang():
            print("hanging", flush=True)
            ctypes.CDLL(None).sleep(600)

        try:
            Watchdog(None, None).run(hang)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "hanging"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)  # 600 s if the signal were lost in the wait
    assert proc.returncode == 0, err
    assert out.strip() == "interrupted"
