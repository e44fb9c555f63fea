"""Before any worker starts: every (robot, policy) pair a run will evaluate is bound and checked,
so a contract that does not fit its robot, its network or its training log stops the run with
INVALID (exit 3) when the contract does not fit its network or its log, exit 4 when a file is
wrong, instead of becoming a confident FAIL (or PASS)."""

from __future__ import annotations

from simgate.envs.factory import build_env, env_for
from simgate.envs.info import describe
from simgate.errors import SimgateError
from simgate.policies.loaders import PolicyLoadError
from simgate.robots.check import check_policy_against_contract
from simgate.robots.logcheck import Mismatch, check_manifest_log


class ContractMismatch(SimgateError):
    """A contract that binds to its robot but does not fit its network's sizes or does not
    reproduce its training log: the run would judge a policy under a contract it was not trained
    with, so its evidence is INVALID (exit 3), not a usage error."""


def check_contracts(cases, registries) -> list[str]:
    """Raise SimgateError listing every problem of the contracts the cases use (ContractMismatch
    when every problem is a mismatch with the network or the training log, not a mistake in a
    file); return the notes (a contract's actuator order that differs from the MJCF's: mapped by
    name, but worth a look)."""
    pairs = sorted({(c.env, p) for c in cases for p in (c.policy, c.baseline) if p})
    built: dict[str, object] = {}
    problems: list[str] = []
    mismatches: list[str] = []
    notes: list[str] = []
    for env_name, policy_name in pairs:
        spec = registries.policies.get(policy_name)
        if spec.format == "hold":
            continue  # sends the candidate's neutral action: nothing of its own to check
        if env_name not in built:
            try:
                built[env_name] = build_env(registries.envs.get(env_name))
            except ValueError as exc:  # a scene MuJoCo cannot load: the message names the file
                raise SimgateError(f"env {env_name!r}: {exc}") from None
        env = built[env_name]
        if not hasattr(env, "for_policy") and getattr(spec, "contract", None) is None:
            continue  # a Python env and a plain policy: the env's code is the contract
        try:
            bound = env_for(env, spec)
        except SimgateError as exc:
            problems.append(str(exc))
            continue
        except ValueError as exc:
            problems.append(f"{spec.manifest}: policy {policy_name!r} on env {env_name!r}: {exc}")
            continue
        mismatches += _checked(spec, bound)
        problems += _perturbations_on(bound, [c for c in cases if c.env == env_name and policy_name in (c.policy, c.baseline)],
                                      registries, policy_name)
        if getattr(bound, "actuator_order_note", None):
            notes.append(f"policy {policy_name!r}: {bound.actuator_order_note}")
    usage = problems + [m for m in mismatches if not isinstance(m, Mismatch)]
    if usage:
        raise SimgateError("\n".join(dict.fromkeys(usage + mismatches)))
    if mismatches:
        raise ContractMismatch("\n".join(dict.fromkeys(mismatches)))
    return list(dict.fromkeys(notes))


def _perturbations_on(env, cases, registries, policy_name: str) -> list[str]:
    """The cases' perturbations checked against the robot as this policy's contract binds it
    (observation group names are the contract's)."""

    info, out = describe(env), []
    for case in cases:
        for p in case.perturbations:
            cls = registries.perturbations.get(p["kind"])
            for key, message in cls(cls.Params.model_validate(p["params"])).check(info):
                out.append(f"{case.source}: case {case.id!r}: {p['kind']}.{key}: {message} (under the contract of policy "
                           f"{policy_name!r}; its observation groups: {', '.join(sorted(env.observation_groups()))})")
    return out


def load_notes(cases, registries) -> list[str]:
    """What loading each ONNX policy of the run found worth saying once (a graph exported with a
    batch of 1, which is then run one observation at a time)."""
    notes = []
    for name in sorted({p for c in cases for p in (c.policy, c.baseline) if p}):
        spec = registries.policies.get(name)
        if spec.format != "onnx":
            continue
        try:
            note = getattr(spec.load(), "note", None)
        except PolicyLoadError:
            continue  # the case reports it as its policy's error
        if note:
            notes.append(note)
    return notes


def _checked(spec, env) -> list[str]:
    """The contract against its network's sizes and its training log: every size disagreement is
    a Mismatch, and so is a log the contract does not reproduce (a log that cannot be read is not)."""
    problems = [Mismatch(p) for p in check_policy_against_contract(spec, env)]
    if not problems and spec.contract.contract.log is not None:
        problem = check_manifest_log(spec, env)
        if problem:
            problems.append(problem)
    return problems
