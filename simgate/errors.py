"""Whose error is it: the user's input, someone else's code, or simgate's own.

Three kinds, and only the first two are ever caught for a person:

- :class:`SimgateError`: a mistake in the user's input (scenario, plugin registration, policy
  manifest, a policy's sizes against its env) with the fix in it; printed, never with a traceback.
- :class:`CodeError`: code that is not simgate's raised while a case was built or run: a
  policy's (:class:`PolicyCodeError`), a plugin's env, perturbation, metric or classifier, or
  MuJoCo refusing a model the user's files describe (:class:`PluginCodeError`). ``owner`` names
  it ("perturbation 'apply_pushes' (plugin simgate.builtin.perturbations)"); the original
  exception is its ``__cause__``, traceback kept. That case fails, named; every other case runs.
- anything else is a fault in simgate: it propagates, with its traceback, to pytest (an errored
  item, or INTERNALERROR and exit 3 outside an item), and is never charged to a policy.

Whose code raised is decided where simgate calls into it: a direct call to a plugin's callable is
wrapped by its caller; where simgate's code and the case's code interleave (an engine running
the env's rules and the perturbations), :func:`blaming` reads the traceback: an exception that
passed through code of one of the case's :class:`Party` objects is that party's, the outermost
such frame deciding; one that never left simgate's own code is simgate's.

A leaf: imports nothing of simgate.
"""

from __future__ import annotations

import contextlib
import functools
import traceback
import types


class SimgateError(Exception):
    """A mistake in the user's input (scenario, plugin, policy manifest) with the fix in it."""


class InputError(SimgateError, ValueError):
    """A user's input that does not fit what it is applied to (a policy's sizes against its env,
    an env's joint names against its model, a control rate against the timestep), found while a
    case is built: that case fails as a setup error. Also a ValueError, for callers written
    before it existed."""


class CodeError(Exception):
    """Code that is not simgate's raised ``error``; ``owner`` says whose."""

    def __init__(self, owner: str, error: BaseException):
        self.owner, self.error = owner, error
        super().__init__(f"{owner} raised {type(error).__name__}: {error}")


class PluginCodeError(CodeError):
    """A plugin's env, perturbation, metric or classifier, or MuJoCo on the user's model: the
    case cannot be set up or evaluated (``setup_error``)."""


class PolicyCodeError(CodeError):
    """A policy's own code outside the engines' per-episode call (which ends only that episode):
    the case's ``policy_error``."""


def located(path, line: int | None, message: str) -> str:
    """``file:line: message`` (line omitted when unknown), the form editors jump to."""
    where = f"{path}:{line}" if line else f"{path}"
    return f"{where}: {message}"


class Party:
    """Code that is not simgate's, by the objects, classes or functions it consists of: an
    instance stands for its class's code (its whole MRO but ``object``: a method it inherits is
    still called on it), a class for its own, a function (or ``functools.partial``) for its code
    and what is nested in it. ``error``: the CodeError type raised for it."""

    def __init__(self, label: str, *owned, error: type[CodeError] = PluginCodeError):
        self.label, self.owned, self.error = label, owned, error
        self._codes: set | None = None

    @property
    def codes(self) -> set:
        if self._codes is None:
            codes: set = set()
            seen: set = set()
            for target in self.owned:
                _collect(target, codes, seen)
            self._codes = codes
        return self._codes

    def rank(self, frame) -> int:
        """How surely ``frame`` runs this party's code: 0 not at all; for a method of an owned
        object's class, 3 when it runs on that very object, 2 on another object of its class (a
        copy, a search row's instance), 0 on anything else (a base class's method shared with
        other parties' objects); 1 for a function, a nested function or a classmethod."""
        code = frame.f_code
        if code not in self.codes:
            return 0
        instances = [t for t in self.owned if not isinstance(t, (type, types.FunctionType, functools.partial))]
        if not instances or code.co_argcount == 0 or code.co_varnames[0] != "self":
            return 1
        this = frame.f_locals.get("self")
        if any(this is t for t in instances):
            return 3
        return 2 if any(isinstance(this, type(t)) for t in instances) else 0


def _collect(target, codes: set, seen: set) -> None:
    if id(target) in seen:
        return
    seen.add(id(target))
    if isinstance(target, functools.partial):
        _collect(target.func, codes, seen)
    elif isinstance(target, (types.FunctionType, types.MethodType)):
        _code(getattr(target, "__func__", target).__code__, codes)
    elif isinstance(target, type):
        for cls in target.__mro__:
            if cls is object or cls.__module__ == "builtins":
                continue
            for value in vars(cls).values():
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if isinstance(value, property):
                    for part in (value.fget, value.fset, value.fdel):
                        if part is not None:
                            _collect(part, codes, seen)
                elif isinstance(value, types.FunctionType):
                    _code(value.__code__, codes)
                elif isinstance(value, type) and value.__qualname__.startswith(cls.__qualname__ + "."):
                    _collect(value, codes, seen)  # a nested class (a perturbation's Params)
    elif target is not None and not isinstance(target, types.BuiltinFunctionType):
        _collect(type(target), codes, seen)  # an object: its class's code


def _code(code: types.CodeType, codes: set) -> None:
    codes.add(code)
    for const in code.co_consts:  # nested functions, lambdas, comprehensions
        if isinstance(const, types.CodeType):
            _code(const, codes)


def blame(exc: BaseException, parties) -> CodeError | None:
    """The CodeError of the party whose code ``exc`` passed through (the outermost frame of any
    party's code decides, the best-ranked party there), or None: ``exc`` is simgate's own."""
    if isinstance(exc, (CodeError, SimgateError)):
        return None
    parties = [p for p in parties if p is not None]
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        ranked = [(p.rank(frame), i) for i, p in enumerate(parties)]
        best, i = max(ranked, default=(0, 0), key=lambda r: (r[0], -r[1]))
        if best:
            party = parties[i]
            return party.error(party.label, exc)
    return None


@contextlib.contextmanager
def blaming(*parties):
    """Inside, an exception that passed through a party's code leaves as that party's
    CodeError (``from`` the original); a SimgateError or CodeError leaves as it is; anything
    else is simgate's and leaves unchanged."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised: typed when a party's code raised it, else as it is
        owned = blame(exc, parties)
        if owned is None:
            raise
        raise owned from exc
