"""Time limits on a case and on each policy call, so one hung policy cannot hang the run.

While a case runs, a periodic ``SIGALRM`` (every :data:`TICK` seconds, main thread only, where
pytest and xdist run tests) checks two clocks: the case's, and the current policy call's. Past a
limit the handler raises :class:`TimeLimit` in the main thread, wherever it is: inside the policy
(the reference engine calls it there) or waiting for the batched engine's lanes, which stop at
their next control step. ``TimeLimit`` is a ``BaseException`` so that no ``except Exception``
around a policy call can swallow it: the case ends, reported as a policy error (timeout), and the
run goes on with the next case.

:class:`GuardedPolicy` wraps what a policy's ``act`` can do besides returning: it times each call
and turns ``sys.exit()`` (``SystemExit``) and other stray ``BaseException`` into an ordinary
error of that episode, so a policy cannot end the worker or break the next case.

Where no timer can be installed (not the main thread, or no ``SIGALRM``: Windows) the limits are
not enforced; nothing else changes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

#: seconds between two looks at the clocks
TICK = 0.25


class TimeLimit(BaseException):
    """A case or one policy call ran past its limit."""


class PolicyCallError(Exception):
    """The policy left ``act`` by something other than a return or an ordinary exception."""


class Watchdog:
    """``with Watchdog(case_seconds, call_seconds) as dog:`` around one case."""

    def __init__(self, case_seconds: float | None, call_seconds: float | None):
        self.case_seconds, self.call_seconds = case_seconds, call_seconds
        self.started = 0.0
        self.call_started: float | None = None
        self.armed = False
        self.paused_depth = 0
        self._previous = None

    def __enter__(self) -> Watchdog:
        self.started = time.monotonic()
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM"):
            self._previous = signal.signal(signal.SIGALRM, self._check)
            signal.setitimer(signal.ITIMER_REAL, TICK, TICK)
            self.armed = True
        return self

    def __exit__(self, *exc) -> None:
        if self.armed:
            self.armed = False  # first: a tick already on its way now finds nothing to do
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._previous or signal.SIG_DFL)

    @contextlib.contextmanager
    def paused(self):
        """The case's clock stands still inside: a wait for episodes computed elsewhere (a Ray
        cluster finishing other cases first) is not this case's running time. Policy calls made
        elsewhere run under that machine's own watchdog."""
        begin = time.monotonic()
        self.paused_depth += 1
        try:
            yield self
        finally:
            self.paused_depth -= 1
            if not self.paused_depth:  # the outermost pause moves the clock once
                self.started += time.monotonic() - begin

    def _check(self, signum, frame) -> None:
        if not self.armed or self.paused_depth:
            return
        now = time.monotonic()
        call = self.call_started
        if self.call_seconds is not None and call is not None and now - call > self.call_seconds:
            self.call_started = None
            raise TimeLimit(f"a policy call took longer than the limit of {self.call_seconds:g} s "
                            "(scenario key 'policy_timeout'); the policy hangs or is far too slow")
        if self.case_seconds is not None and now - self.started > self.case_seconds:
            raise TimeLimit(f"the case ran longer than its limit of {self.case_seconds:g} s (scenario key "
                            f"'case_timeout'); raise it for a large case, or look for a policy that stalls")


class GuardedPolicy:
    """A policy whose calls are timed by ``watchdog`` and cannot end the process."""

    def __init__(self, policy, watchdog: Watchdog | None):
        self.inner, self.watchdog = policy, watchdog

    def act(self, obs):
        dog = self.watchdog
        if dog is not None:
            dog.call_started = time.monotonic()
        try:
            return self.inner.act(obs)
        except (TimeLimit, KeyboardInterrupt):
            raise
        except SystemExit as exc:
            raise PolicyCallError(f"the policy called sys.exit({exc.code!r}); a policy must return actions") from None
        except Exception:
            raise
        except BaseException as exc:  # GeneratorExit and the like: not the policy's to raise
            raise PolicyCallError(f"the policy raised {type(exc).__name__}: {exc}") from None
        finally:
            if dog is not None:
                dog.call_started = None
