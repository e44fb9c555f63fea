"""The one typed contract between the process that ran a case and the controller that decides.

A worker sends a :class:`CaseRecord` (as JSON-compatible data on ``report.user_properties``); the
controller validates it against the same models before it counts. Requirements are told apart by
``kind`` (:data:`simgate.verdict.KINDS`), never by their display name. The case itself (its
policy, its gate, its thresholds) is always the controller's own collected
:class:`~simgate.scenarios.case.Case`, never the worker's copy: :func:`load` puts it in place of
the record's.

Only *which* case a report is about is ever read from outside that Case. Where the controller
collected the items itself (``-n 0``), a test's node id maps to its item's Case. An xdist
controller collects nothing, so it parses the node ids its workers collected: the text inside
the brackets of ``...::test_scenario[<case id>]`` (``simgate.controller._param_id``), kept only
when it is the id of one of its own cases. A report whose node id it does not know is matched by
its record's ``case.id``, again only to one of its own cases; and :func:`load` refuses a record
whose case id is not that of the case it is counted for. Nothing else is taken from a test id.
A record that does not fit is a contract error: the case is reported as broken, never as passed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simgate import verdict

#: bump when a field changes meaning; a record of another version is refused
VERSION = 2

Outcome = Literal["PASS", "FAIL", "INCONCLUSIVE", "ERROR"]
#: how a case ended: ran (it has a verdict), error (it could not be evaluated: bad policy file,
#: timeout, ...), crashed (its process died or a fixture broke; built by the controller)
Status = Literal["ran", "error", "crashed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequirementRecord(_Strict):
    kind: Literal[verdict.KINDS]  # type: ignore[valid-type]
    name: str
    outcome: Literal["PASS", "FAIL", "INCONCLUSIVE"]
    observed: str
    bound: str
    threshold: str
    numbers: dict[str, Any]


class CaseRecord(_Strict):
    contract: Literal[VERSION]  # type: ignore[valid-type]
    case: dict[str, Any]
    status: Status
    outcome: Outcome
    episodes: int = Field(ge=0)
    requirements: list[RequirementRecord]
    failure_modes: dict[str, int]
    metrics: dict[str, float | None]
    error: str | None = None
    examples: dict[str, str] = Field(default_factory=dict)
    #: episodes by the engine that computed them ({"batched": 64}); cached ones keep theirs
    engine: dict[str, int] = Field(default_factory=dict)
    episodes_run: int = 0
    episodes_cached: int = 0
    feasibility: float | None = None
    policy_sha256: str | None = None
    worst_episode: int | None = None
    #: why episodes were not cached, if they were not (an unhashable input, an unwritable folder)
    cache_note: str | None = None
    #: a search case's findings (simgate.search.run): boundary, counterexamples, sensitivity, auc,
    #: certificate, episodes; None for a case without a search: block
    search: dict[str, Any] | None = None
    #: a perturbed case's benign arm (simgate.benign.cost): the same seeds with the perturbations
    #: off, and the drop between them with its interval; None for an unperturbed case
    benign: dict[str, Any] | None = None


class ContractError(Exception):
    """A worker's record that the controller cannot trust."""


def dump(record: CaseRecord) -> dict[str, Any]:
    return record.model_dump(mode="python")


def load(value: Any, case) -> dict[str, Any]:
    """The validated record of ``case`` (the controller's own), as plain data. The record's case
    is replaced by the controller's, so nothing downstream trusts the worker's copy."""
    try:
        record = CaseRecord.model_validate(value)
    except ValidationError as exc:
        raise ContractError(f"the result of {case.id} does not fit simgate's result contract "
                            f"(version {VERSION}): {exc.errors(include_url=False)[:3]}") from None
    if record.case.get("id") != case.id:
        raise ContractError(f"a result for {record.case.get('id')!r} arrived as the result of {case.id!r}")
    data = dump(record)
    data["case"] = case.to_dict()
    return data


def broken(case, status: str, detail: str, mode: str = "crash") -> dict[str, Any]:
    """The record of a case that produced no valid result, built from the collected case."""
    record = CaseRecord(contract=VERSION, case=case.to_dict(), status=status, outcome="ERROR", episodes=0,
                        requirements=[], failure_modes={mode: 1}, metrics={}, error=detail)
    return dump(record)
