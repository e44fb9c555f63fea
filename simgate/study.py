"""The study a promotion decision is made under, fixed before the candidate runs.

A study lists, for every case the run will evaluate, what its evidence depends on and how it will
be judged: the scenario file's content hash, the candidate's and the baseline's policy digests,
the seed, the design (episodes, or the sequential design and its cap), the requirements and their
level, the declared drop and power of ``episodes: auto``, and the size of the candidate's
regression family. ``python -m simgate plan --write study.json`` writes it (and prints what the
gate will run); ``pytest ... --simgate-study study.json`` refuses, as INVALID and before any
episode, a run whose study differs from the pinned one, naming what changed. Every verdict
records the hash of the study it was decided under.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import simgate
from simgate import cache
from simgate.cache import file_sha256
from simgate.errors import SimgateError
from simgate.paired import detectable_drop
from simgate.pairedseq import ASSUMED_RATE, design_of
from simgate.verdict import regression_level

#: the study file's format; a file of another format (or of another simgate major version) is refused
FORMAT = 1


class StudyError(SimgateError):
    """The pinned study cannot be read, or the run differs from it: INVALID, nothing run."""


def _major() -> str:
    return simgate.__version__.split(".")[0]


def policy_digest(spec) -> str | None:
    """What a policy's actions depend on, known without loading it: a weights file's bytes, or a
    scripted policy's package and declared files; with its contract's, when it has one."""

    try:
        if spec.format == "hold":
            parts = {"format": "hold", "name": spec.name}
        elif spec.format != "scripted" and getattr(spec, "file", None):
            parts = {"file": cache.file_sha256(Path(spec.file))}
        else:
            parts = cache.scripted_sources(spec)
    except Exception:  # noqa: BLE001 - a policy that cannot be hashed has no pinned identity
        return None
    contract = getattr(spec, "contract", None)
    if contract is not None:
        parts["contract"] = getattr(contract, "digest", None)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _file_sha256(path: Path) -> str | None:
    """The file's sha256 (the episode cache's hasher), or None where it cannot be read."""

    try:
        return file_sha256(path)
    except OSError:
        return None


def planned_drop(case, measured: float | None = None) -> tuple[float | None, float, str]:
    """The drop of the success rate the case's comparison with its baseline detects with 90 %
    power at its planned episodes, the baseline rate that assumes and where the rate comes from:
    the baseline's rate on this case in the last run (``measured``: then it is the figure the run
    reports, at the same episodes and level), else the case's declared one, else ASSUMED_RATE."""

    paired = design_of(case)
    if paired is not None:  # planned by simulation for the drop declared, at the least favourable correlation
        return paired.drop, paired.baseline_rate, f"sequential paired test, power {paired.power:g} planned"
    declared = (case.detect or {}).get("baseline_rate")
    rate, source = ((measured, "measured in the last run") if measured is not None else
                    (declared, "declared") if declared else (ASSUMED_RATE, "assumed"))
    if not case.baseline or not case.gate or case.baseline == case.policy:
        return None, rate, source
    return detectable_drop(int(case.episodes), float(rate), regression_level(case)), rate, source


def measured_rates(summary: Path) -> dict[str, float]:
    """Each case's baseline success rate in a run's summary.json (none when it cannot be read)."""
    try:
        cases = json.loads(Path(summary).read_text(encoding="utf-8")).get("cases") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    out = {}
    for cid, record in cases.items():
        for r in record.get("requirements") or []:
            rate = (r.get("numbers") or {}).get("baseline_rate")
            if r.get("kind") == "not_worse" and isinstance(rate, (int, float)):
                out[cid] = float(rate)
    return out


def document(cases, registries, root: Path, measured: dict[str, float] | None = None) -> dict:
    """The study of these cases (``root``: the project folder their ``source`` paths are relative
    to; ``measured``: each case's baseline rate in the last run, for the planned detectable drop,
    which is shown but not pinned)."""
    digests: dict[str, str | None] = {}

    def digest(name: str | None) -> str | None:
        if name is None:
            return None
        if name not in digests:
            digests[name] = policy_digest(registries.policies.get(name))
        return digests[name]

    scenario_hashes: dict[str, str | None] = {}
    entries = {}
    for c in cases:
        source = Path(c.source)
        if c.source not in scenario_hashes:
            scenario_hashes[c.source] = _file_sha256(source if source.is_absolute() else root / source)
        drop, rate, source = planned_drop(c, (measured or {}).get(c.id))
        entries[c.id] = {
            "scenario": c.scenario, "source": c.source, "scenario_sha256": scenario_hashes[c.source],
            "policy": c.policy, "policy_digest": digest(c.policy),
            "baseline": c.baseline, "baseline_digest": digest(c.baseline),
            "seed": c.seed, "point": c.point, "gate": c.gate,
            "design": {"episodes": c.episodes, "sequential": c.sequential, "paired": c.paired, "horizon": c.horizon,
                       "determinism_episodes": c.determinism_episodes, "search": c.search is not None},
            "alpha": c.alpha, "thresholds": c.thresholds, "detect": c.detect,
            "regression_family": c.regression_family,
            "planned": {"episodes": max(c.episodes, paired.cap) if (paired := design_of(c)) else c.episodes,
                        "detectable_drop_90": drop, "baseline_rate": rate, "rate_source": source},
        }
    body = {"format": FORMAT, "simgate_major": _major(), "cases": entries}
    return {**body, "hash": study_hash(body)}


def study_hash(body: dict) -> str:
    # what is pinned: not the planned figures, which follow the last run's measured rates
    cases = {cid: {k: v for k, v in entry.items() if k != "planned"} for cid, entry in body["cases"].items()}
    core = {"format": body["format"], "simgate_major": body["simgate_major"], "cases": cases}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()


def load(path: Path) -> dict:
    """A pinned study, checked: its format, its simgate major version and its own hash."""
    try:
        pinned = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise StudyError(f"--simgate-study {path}: cannot be read ({exc.strerror or exc}); write one with "
                         "python -m simgate plan --write FILE") from None
    except ValueError as exc:
        raise StudyError(f"--simgate-study {path}: not a study file (not JSON: {exc}); write one with "
                         "python -m simgate plan --write FILE") from None
    if not isinstance(pinned, dict) or not isinstance(pinned.get("cases"), dict) or "hash" not in pinned:
        raise StudyError(f"--simgate-study {path}: not a study file (no 'cases' and 'hash'); write one with "
                         "python -m simgate plan --write FILE")
    if pinned.get("format") != FORMAT:
        raise StudyError(f"--simgate-study {path}: study format {pinned.get('format')!r}, this simgate reads {FORMAT}; "
                         "pin the study again with python -m simgate plan --write FILE")
    if str(pinned.get("simgate_major")) != _major():
        raise StudyError(f"--simgate-study {path}: pinned with simgate {pinned.get('simgate_major')}.x, this is "
                         f"{_major()}.x; pin the study again with python -m simgate plan --write FILE")
    if study_hash(pinned) != pinned["hash"]:
        raise StudyError(f"--simgate-study {path}: its content does not match its own hash (edited by hand?); pin "
                         "the study again with python -m simgate plan --write FILE")
    return pinned


#: what a difference in each field of a case means, in a user's words
_FIELDS = (("scenario_sha256", "scenario file {source} changed"),
           ("policy_digest", "candidate {policy} changed (its weights, code or contract)"),
           ("baseline", "baseline changed from {was} to {now}"),
           ("baseline_digest", "baseline {baseline} changed (its weights, code or contract)"),
           ("seed", "seed changed from {was} to {now}"),
           ("design", "design changed from {was} to {now}"),
           ("alpha", "alpha changed from {was} to {now}"),
           ("thresholds", "requirements changed from {was} to {now}"),
           ("detect", "declared drop/power changed from {was} to {now}"),
           ("regression_family", "regression family changed from {was} to {now} cases"),
           ("gate", "gate changed from {was} to {now}"))


def differences(pinned: dict, current: dict) -> list[str]:
    """Every way the current run differs from the pinned study, one line each, case by case."""
    out = []
    before, now = pinned["cases"], current["cases"]
    for cid in sorted(set(before) - set(now)):
        out.append(f"{cid}: pinned, but not in this run (scenario {before[cid].get('source')} removed or edited, "
                   "or a policy not selected)")
    for cid in sorted(set(now) - set(before)):
        out.append(f"{cid}: in this run, but not in the pinned study (a new scenario, matrix value or policy)")
    for cid in sorted(set(before) & set(now)):
        was, is_ = before[cid], now[cid]
        for field, words in _FIELDS:
            old, new = was.get(field), is_.get(field)
            if _same(old, new):
                continue
            if isinstance(old, dict) and isinstance(new, dict):  # name the keys that changed, not the whole mapping
                keys = sorted(k for k in set(old) | set(new) if not _same(old.get(k), new.get(k)))
                old, new = ({k: d.get(k) for k in keys} for d in (was[field], is_[field]))
            out.append(f"{cid}: " + words.format(source=is_.get("source"), policy=is_.get("policy"),
                                                 baseline=is_.get("baseline"), was=old, now=new))
    return out


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def plan_lines(study: dict) -> list[str]:
    """What the gate will run, before it runs: each case's planned episodes and the drop its
    comparison with the baseline detects with 90 % power."""
    cases = study["cases"]
    looks = sum(1 for c in cases.values() if (c["design"].get("sequential") or {}).get("method"))
    lines = [f"simgate plan: {len(cases)} case(s), {sum(c['planned']['episodes'] for c in cases.values()):,} planned "
             f"episodes (study {study['hash'][:12]})" + (f"; at most: {looks} case(s) judged at looks may stop at an "
                                                         "earlier one" if looks else "")]
    width = max((len(cid) for cid in cases), default=4)
    lines.append(f"  {'case':<{width}}  {'episodes':>8}  {'design':<22}  detectable drop (90% power)")
    for cid, c in cases.items():
        design = c["design"]
        seq = design.get("sequential") or {}
        kind = ("group + paired seq., cap" if seq.get("method") == "group" and design.get("paired") else
                "fixed + paired seq., cap" if design.get("paired") else
                "group-sequential, cap" if seq.get("method") == "group" else f"sequential ({seq.get('method', '?')}), cap"
                if seq else "search" if design.get("search") else "fixed" if not c.get("detect") else "auto (declared drop)")
        drop = c["planned"]["detectable_drop_90"]
        if not c.get("gate"):
            said = "informational: not compared"
        elif c.get("baseline") is None:
            said = "no baseline"
        elif c["baseline"] == c["policy"]:
            said = "is the baseline: not compared"
        elif drop is None:
            said = (f"none (not even a drop to 0 at baseline rate {c['planned']['baseline_rate']:g}, "
                    f"{c['planned']['rate_source']})")
        else:
            said = f"{drop:.1%} at baseline rate {c['planned']['baseline_rate']:.3g} ({c['planned']['rate_source']})"
        lines.append(f"  {cid:<{width}}  {c['planned']['episodes']:>8,}  {kind:<22}  {said}")
    return lines
