"""Time limits on a case and on each policy call, so one hung policy cannot hang the run.

:meth:`Watchdog.run` runs a case's work on a daemon thread of its own while the calling thread
only watches: it waits on an event in short slices and looks at two clocks, the case's and those
of the policy calls under way (one per engine lane). Past a limit the *watching* thread raises
:class:`TimeLimit` from its own code and abandons the work thread: a policy hung in Python or in
native code (onnxruntime, torch, ``ctypes``) cannot hold the run, and the case is reported as a
policy error (timeout) while the run goes on with the next case.

No exception is ever delivered into a thread join or a lock wait (in CPython 3.11 an exception
raised inside ``Thread.join`` marks a thread that still runs as stopped: gh-90882). No signal
timer is used either, so nothing competes with another ``SIGALRM`` user (pytest-timeout).
While the main thread watches, SIGINT and SIGTERM are only recorded; the watcher stops waiting at
once, and the signal is raised again through the handler that was in place (Ctrl-C's
``KeyboardInterrupt``, the controller's SIGTERM) from plain code, not from inside a wait.

An abandoned work thread stops at its next policy call (:class:`GuardedPolicy` raises
``TimeLimit`` there once the run is cancelled) or, if it is inside a policy call running Python
code, at once: the watcher hands that thread a ``TimeLimit`` through CPython's asynchronous
exception, which reaches only Python bytecode (a native call that never returns stays where it
is, on a daemon thread whose result nobody waits for).

``TimeLimit`` is a ``BaseException`` so that no ``except Exception`` around a policy call can
swallow it. :class:`GuardedPolicy` also turns ``sys.exit()`` (``SystemExit``) and other stray
``BaseException`` into an ordinary error of that episode, so a policy cannot end the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading
import time

#: seconds between two looks at the clocks (and the longest a recorded Ctrl-C waits)
TICK = 0.1

_DEFERRED = ("SIGINT", "SIGTERM")


class TimeLimit(BaseException):
    """A case or one policy call ran past its limit."""


class PolicyCallError(Exception):
    """The policy left ``act`` by something other than a return or an ordinary exception."""


class Watchdog:
    """``Watchdog(case_seconds, call_seconds).run(fn, *args)`` around one case's work."""

    def __init__(self, case_seconds: float | None, call_seconds: float | None):
        self.case_seconds, self.call_seconds = case_seconds, call_seconds
        self.started = time.monotonic()
        self.calls: dict[int, float] = {}  # thread ident -> start of the policy call it is in
        self.paused_depth = 0
        # set once a limit gave up on the work: the abandoned threads stop at their next policy
        # call, and a later run() of this watchdog (a Ray worker's next chunk) is refused
        self.cancelled = threading.Event()
        self.reason = ""
        #: the policy whose episodes are being computed (a case also runs its baseline's and its
        #: benign arm's under this watchdog): a time limit names it when it is not the case's own
        self.running: str | None = None
        self.stopped: str | None = None  # ``running`` when a limit gave up (the abandoned thread may unwind it)

    def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on a daemon thread, watched; its result or its exception.
        Raises :class:`TimeLimit` (from this thread's own code) when a limit is passed."""
        if self.cancelled.is_set():
            raise TimeLimit(self.reason)
        self.started = time.monotonic()
        done = threading.Event()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the watching thread
                outcome["error"] = exc
            finally:
                done.set()

        thread = threading.Thread(target=work, name="simgate-case", daemon=True)
        with _signals_recorded() as pending:
            thread.start()
            while not done.wait(TICK):
                if pending:
                    self._give_up("interrupted", interrupt=True)
                    break  # leaving the block raises the recorded signal through its own handler
                reason = self._expired()
                if reason:
                    self._give_up(reason)
                    raise TimeLimit(reason)
        if not done.is_set():  # interrupted, and the signal's own handler did not raise
            raise KeyboardInterrupt("interrupted while a case ran")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

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
            if self.paused_depth == 1:  # the outermost pause moves the clock, before it ends
                self.started += time.monotonic() - begin
            self.paused_depth -= 1

    @contextlib.contextmanager
    def computing(self, policy: str):
        """Inside, ``policy``'s episodes are being computed: a limit that gives up names it
        (:attr:`stopped`) when it is not the case's own policy."""
        before, self.running = self.running, policy
        try:
            yield self
        finally:
            self.running = before

    def _expired(self) -> str:
        now = time.monotonic()
        calls = list(self.calls.values())
        if self.call_seconds is not None and calls and now - min(calls) > self.call_seconds:
            return (f"a policy call took longer than the limit of {self.call_seconds:g} s (scenario key "
                    "'policy_timeout'); the policy hangs or is far too slow")
        if self.case_seconds is not None and not self.paused_depth and now - self.started > self.case_seconds:
            return (f"the case ran longer than its limit of {self.case_seconds:g} s (scenario key "
                    "'case_timeout'); raise it for a large case, or look for a policy that stalls")
        return ""

    def _give_up(self, reason: str, interrupt: bool = False) -> None:
        self.reason = reason
        self.stopped = self.running
        self.cancelled.set()
        for ident in list(self.calls):  # threads inside the policy's own code: stop Python there
            _raise_in(ident, KeyboardInterrupt if interrupt else TimeLimit)


def _raise_in(ident: int, exc_type: type) -> None:
    """An asynchronous exception for thread ``ident`` (CPython checks it between bytecodes only,
    so a thread blocked in a native call is left where it is)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))


@contextlib.contextmanager
def _signals_recorded():
    """In the main thread: SIGINT and SIGTERM recorded instead of handled while inside; on the
    way out the previous handlers are back and the first recorded signal is raised again."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    pending: list[int] = []
    names = [getattr(signal, n) for n in _DEFERRED if hasattr(signal, n)]
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in names}
    try:
        yield pending
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if pending:
            signal.raise_signal(pending[0])


class GuardedPolicy:
    """A policy whose calls are timed by ``watchdog`` and cannot end the process."""

    def __init__(self, policy, watchdog: Watchdog | None):
        self.inner, self.watchdog = policy, watchdog

    def act(self, obs):
        dog = self.watchdog
        if dog is None:
            return self._act(obs)
        if dog.cancelled.is_set():
            raise TimeLimit(dog.reason)
        me = threading.get_ident()
        dog.calls[me] = time.monotonic()
        try:
            return self._act(obs)
        finally:
            dog.calls.pop(me, None)

    def _act(self, obs):
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
