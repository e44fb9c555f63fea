"""Matrix sweeps × policies → cases, in a fixed order with stable ids."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import tomllib
from pathlib import Path
from typing import Any

from simgate import pairedseq
from simgate.errors import InputError, SimgateError, located
from simgate.groupseq import planned_looks
from simgate.names import did_you_mean
from simgate.paired import approximate_episodes, episodes_for, window_power
from simgate.policies.spec import PolicySpec
from simgate.scenarios.case import Case, case_id
from simgate.scenarios.loader import MAX_CASES, MAX_CASES_OPTION, LoadedScenario, load_file, matrix_targets, n_points, scenario_files
from simgate.scenarios.schema import Detect, Sequential
from simgate.verdict import FAMILY_LEVEL, regression_level


def points(spec) -> list[dict[str, Any]]:
    """The cross product of the matrix axes, in the order the file declares them."""
    names = list(spec.matrix)
    values = [spec.matrix[n].values for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def resolve_perturbations(sc: LoadedScenario, point: dict[str, Any]) -> list[dict[str, Any]]:
    """The perturbation list with the matrix point's values written into their params."""
    entries = [{"kind": e.kind, "params": copy.deepcopy(e.params)} for e in sc.spec.perturbations]
    for name, (index, param) in matrix_targets(sc).items():
        entries[index]["params"][param] = point[name]
    return entries


def policies_for(sc: LoadedScenario, registries, selected: list[str], candidates: list[str]) -> list[str]:
    """``--policy`` wins; else the scenario's own list; else the configured candidates (same env)."""
    if selected:
        chosen = selected
    elif sc.spec.policies is not None:
        return list(sc.spec.policies)
    else:
        chosen = candidates
    return [p for p in chosen if registries.policies.get(p).env == sc.spec.env]


def check_policy_names(names: list[str], registries, origin: str) -> None:
    for name in names:
        if name not in registries.policies:
            raise SimgateError(f"{origin}: unknown policy {name!r}{did_you_mean(name, registries.policies.names())}")


def expand(sc: LoadedScenario, policies: list[str]) -> list[Case]:
    spec = sc.spec
    cases = []
    for point in points(spec):
        perturbations = tuple(resolve_perturbations(sc, point))
        for policy in policies:
            cases.append(Case(
                id=case_id(spec.name, point, policy), scenario=spec.name, source=sc.source, env=spec.env,
                policy=policy, point=point, perturbations=perturbations,
                episodes=spec.episodes if spec.episodes != "auto" else 0,  # planned in load_cases
                detect={**spec.detect.model_dump(), "auto": spec.episodes == "auto"} if spec.detect else None,
                earlier_looks=tuple(spec.earlier_looks),
                horizon=spec.horizon, seed=spec.seed, alpha=spec.alpha,
                determinism_episodes=spec.determinism_episodes,
                thresholds=spec.thresholds.model_dump(exclude_none=True), gate=spec.gate,
                sequential=spec.sequential.model_dump() if spec.sequential else None, design=spec.design,
                classify=spec.classify.model_dump(), severity=spec.severity,
                case_timeout=spec.case_timeout, policy_timeout=spec.policy_timeout,
                frequency_response=spec.frequency_response.model_dump() if spec.frequency_response else None,
                search=spec.search.model_dump() if spec.search else None,
                benign=spec.benign and spec.replay is None,  # a pinned case's few episodes: no arm
                replay=spec.replay.model_dump() if spec.replay else None,
                hard_limits=spec.hard_limits.model_dump(exclude_none=True) if spec.hard_limits else None,
            ))
    return cases


def load_cases(directory: Path, rootdir: Path, registries, selected: list[str], candidates: list[str],
               env_info=None, baselines: list[str] = (), max_cases: int = MAX_CASES,
               check_digests: bool = True) -> list[Case]:
    """Every case of every scenario file; one SimgateError naming every broken file.

    ``env_info(name) -> EnvInfo`` enables model-aware parameter checks (see loader.load_file).
    ``baselines``: the promoted policies; a case is compared with the one for its env.
    ``max_cases``: the most cases the run may expand to (``--simgate-max-cases``).
    ``check_digests``: hash the policy files used against their manifests' sha256; false in an
    xdist worker, whose controller already refused a mismatch before it started.
    """
    check_policy_names(selected, registries, "--policy")
    check_policy_names(candidates, registries, "simgate_candidates (pytest configuration)")
    check_policy_names(list(baselines), registries, "--baseline / simgate_baselines")
    problems = _policy_envs(registries)
    if problems:  # a policy for an env nobody registered: every later check would mislead
        raise SimgateError("\n".join(problems))
    baseline_for: dict[str, str] = {}
    for name in baselines:
        baseline_for.setdefault(registries.policies.get(name).env, name)  # "*": the built-in hold, any env
    cases, names, sizes, used, loaded = [], {}, {}, set(baselines), {}
    for path in scenario_files(directory):
        display = _display(path, rootdir)
        try:
            sc = load_file(path, display, registries, env_info, max_cases)
        except SimgateError as exc:
            problems.append(str(exc))
            continue
        if sc.spec.name in names:
            problems.append(located(display, sc.line("name"), f"name: scenario {sc.spec.name!r} is already defined in {names[sc.spec.name]}; names must be unique"))
            continue
        names[sc.spec.name] = display
        loaded[display] = sc
        chosen = policies_for(sc, registries, selected, candidates)
        used.update(chosen)
        sizes[display] = n_points(sc.spec) * len(chosen)
        if sum(sizes.values()) <= max_cases:  # past the cap, count but do not build
            # a pinned case is judged on its own episodes only: no comparison on a handful of pairs
            cases.extend(dataclasses.replace(c, baseline=None if c.replay else baseline_for.get(c.env, baseline_for.get("*")))
                         for c in expand(sc, chosen))
    for name in sorted(used):  # file present, digest right: once per run, not once per case
        problem = registries.policies.get(name).problem(check_digest=check_digests)
        if problem:
            problems.append(problem)
    total = sum(sizes.values())
    if total > max_cases:
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
        problems.append(f"{_display(directory, rootdir)}: the scenarios expand to {total:,} cases, more than the cap of "
                        f"{max_cases:,} (largest: {', '.join(f'{d} {n:,}' for d, n in largest)}); select fewer policies "
                        f"or matrix values, or raise the cap with {MAX_CASES_OPTION} {total}")
    if not problems:
        problems = _duplicate_ids(cases) + _unevaluated(cases, registries, selected, candidates,
                                                         _display(directory, rootdir))
    if not problems:
        cases, problems = _regression_families(cases, loaded)
        detect = project_detect(rootdir)
        designed = []
        for c in cases:
            try:
                designed.append(default_design(c, detect, loaded.get(c.source)))
            except InputError as exc:
                problems.append(str(exc))
        cases = designed
    if problems:
        raise SimgateError("\n".join(dict.fromkeys(problems)))
    return cases


#: the drop against the baseline a gating case must flag when neither the scenario's ``detect:``
#: nor pyproject.toml's ``[tool.simgate.detect]`` names one
DEFAULT_DROP = 0.10

#: what a case may be stopped at a look for: the success rate (the group-sequential test), the mean
#: torque (the betting test, valid at every look), and checks that do not count episodes; the
#: regression margins only matter against another policy, which keeps a case on one look
LOOK_VALID = frozenset({"min_success_rate", "max_mean_torque", "deterministic", "max_inference_ms",
                        "regression_margin", "torque_regression_margin"})


def default_design(case: Case, detect: dict | None = None, sc: LoadedScenario | None = None) -> Case:
    """A gating case with a number of episodes and no design of its own runs the exact
    group-sequential design (simgate.groupseq) on them, when every requirement it has can be
    decided at a look: no requirement judged by a fixed-size test (p95, power, e-stop share, the
    hard limits' "no episode above"), no extension of earlier runs, not a pinned replay.

    Compared with another policy, such a case (and one that keeps one look for its own
    requirements) also runs the sequential paired test (simgate.pairedseq) for the drop its
    scenario declares (``detect``; else ``detect``, the project's default): at the case's looks,
    then on by its first look's episodes up to the cap planned for that drop, so the comparison
    may run past ``episodes`` while it is undecided. InputError (naming the file) when no cap up
    to ``detect.most`` reaches the power. ``design: fixed``, ``episodes: auto``, a pinned replay,
    extended earlier looks and the sprt/anytime designs keep the fixed-size McNemar test."""
    if (case.design != "auto" or not case.gate or case.replay or case.earlier_looks
            or (case.detect and case.detect["auto"])):
        return case
    asked = {key for key, value in case.thresholds.items() if value not in (None, False)}
    looks = (case.episodes,)
    if not case.sequential and "min_success_rate" in asked and asked <= LOOK_VALID:
        # the block a scenario writing `sequential: {method: group}` gets, marked as the default
        block = {**Sequential(method="group").model_dump(), "default": True}
        case = dataclasses.replace(case, sequential=block)
        looks = planned_looks(case.episodes, block["looks"])
    elif case.sequential:  # a design of its own
        return case
    if not case.baseline or case.baseline == case.policy:
        return case
    target = {**Detect.model_validate({"drop": DEFAULT_DROP}).model_dump(), **(detect or {}), **(case.detect or {})}
    rate = target.get("baseline_rate") or case.thresholds.get("min_success_rate") or pairedseq.ASSUMED_RATE
    try:  # past its own looks, the comparison goes on by the group design's first look for these episodes
        design = pairedseq.plan(target["drop"], target["power"], regression_level(case), rate, looks, target["most"],
                                planned_looks(case.episodes)[0])
    except InputError as exc:
        line = (sc.line("detect") or sc.line("episodes")) if sc is not None else None
        raise InputError(located(case.source, line, f"detect: {exc}: detect a larger drop, lower detect.power or raise "
                                                    "detect.most; or compare this case at a fixed size (design: fixed)")) from None
    return dataclasses.replace(case, paired=design.to_dict())


def project_detect(rootdir: Path) -> dict:
    """``[tool.simgate.detect]`` of the project's pyproject.toml (checked as a scenario's
    ``detect``), or {}: the drop every comparison with another policy must flag by default."""
    path = Path(rootdir) / "pyproject.toml"
    try:
        table = tomllib.loads(path.read_text()).get("tool", {}).get("simgate", {}).get("detect")
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise InputError(f"{path}: [tool.simgate.detect] should be a table (drop = 0.10, power = 0.9), received {table!r}")
    known = list(Detect.model_fields)
    for key in table:
        if key not in known:
            raise InputError(located(str(path), _toml_line(path, key), f"[tool.simgate.detect]: unknown key {key!r}"
                                                                       f"{did_you_mean(key, known)} (keys: {', '.join(known)})"))
    try:
        return Detect.model_validate({"drop": DEFAULT_DROP, **table}).model_dump(include=set(table))
    except ValueError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"{path}: [tool.simgate.detect]: {problems}") from None


def _toml_line(path: Path, key: str) -> int | None:
    """The line of ``key = ...`` in a TOML file (the first such line), for an error that names it."""
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if text.split("=", 1)[0].strip() == key:
            return number
    return None


def _regression_families(cases: list[Case], loaded: dict | None = None) -> tuple[list[Case], list[str]]:
    """Each case learns the size of its policy's regression family (its gating cases with a
    baseline); ``episodes: auto`` is planned at the level that family leaves one case.
    ``loaded``: display path -> LoadedScenario, for the lines of a detect it cannot reach."""

    # the family as the controller judges it: gating cases compared with another policy
    sizes: dict[str, int] = {}
    levels: dict[str, float] = {}
    for c in cases:
        if c.gate and c.baseline and c.baseline != c.policy:
            sizes[c.policy] = sizes.get(c.policy, 0) + 1
            levels[c.policy] = min(levels.get(c.policy, FAMILY_LEVEL), float(c.alpha))
    out, problems = [], []
    for c in cases:
        c = dataclasses.replace(c, regression_family=max(sizes.get(c.policy, 1), 1),
                                family_alpha=levels.get(c.policy, min(FAMILY_LEVEL, float(c.alpha))))
        if c.detect is not None and c.detect["auto"]:
            if not c.baseline:
                problems.append(f"{c.source}: episodes: auto plans the comparison with the promoted policy, and env "
                                f"{c.env!r} has none in this run (simgate_baselines or --baseline); give a number of episodes")
                continue
            rate = c.detect.get("baseline_rate") or c.thresholds.get("min_success_rate")
            level = regression_level(c)
            most = c.detect.get("most", 5000)
            n = episodes_for(c.detect["drop"], c.detect["power"], rate, level, most)
            reached = window_power(n, c.detect["drop"], rate, level)
            if n >= most and reached < c.detect["power"]:  # episodes_for stops at most, power or not
                problems.append(_unreachable_drop(c, (loaded or {}).get(c.source), rate, level, reached))
                continue
            c = dataclasses.replace(c, episodes=n, detect={**c.detect, "baseline_rate": rate, "level": level, "episodes": n})
        out.append(c)
    return out, problems


def _unreachable_drop(case: Case, sc: LoadedScenario | None, rate: float, level: float, reached: float) -> str:
    """``episodes: auto`` asked for a drop it cannot detect within ``detect.most``: said now, not
    after ``most`` episodes that PASS without the power the scenario declared."""

    detect = case.detect
    most, cap = detect.get("most", 5000), Detect.model_fields["most"].metadata
    largest = next((m.le for m in cap if getattr(m, "le", None) is not None), 100_000)
    needed = _round_up(1.1 * approximate_episodes(detect["drop"], detect["power"], rate, level))
    if needed <= most:  # the saw-tooth's edge: the approximation says most, the exact test does not
        needed = _round_up(2 * most)
    line = sc.line("detect", "most") or sc.line("detect") if sc is not None else None
    if needed > largest:
        fix = (f"it would need about {needed:,} episodes, more than detect.most may be ({largest:,}): detect a larger "
               "drop, lower detect.power, or give the policy fewer gating cases against the baseline (each one "
               "lowers the level)")
    else:
        fix = f"raise detect.most to about {needed:,} (what this drop needs), or detect a larger drop, or lower detect.power"
    return located(case.source, line,
                   f"detect: a drop of {detect['drop']:g} from a baseline success rate of {rate:g} cannot be detected "
                   f"with power {detect['power']:g} within most: {most:,} episodes (the exact McNemar test, at the "
                   f"level {level:.3g} a regression family of {case.regression_family} case(s) leaves it, has power "
                   f"{reached:.2f} there); {fix}")


def _round_up(value: float) -> int:
    """``value`` rounded up to two significant digits (an estimate, not a count)."""
    step = 10 ** max(0, len(str(math.ceil(value))) - 2)
    return math.ceil(value / step) * step


def _policy_envs(registries) -> list[str]:
    """Every registered policy names a registered env (a misspelt env would leave it without a case)."""

    out = []
    for name in registries.policies:
        spec = registries.policies.get(name)
        if not isinstance(spec, PolicySpec):
            out.append(f"simgate plugin {registries.policies.owner(name)}: policy {name!r} is registered as a "
                       f"{type(spec).__name__}; register a simgate.policies.spec.PolicySpec")
            continue
        env = spec.env
        if env not in registries.envs and env != "*":  # "*": the built-in hold, for any env
            out.append(located(spec.manifest, spec.lines.get("env", spec.line),
                               f"env: policy {name!r} is for env {env!r}, which is not registered"
                               f"{did_you_mean(str(env), registries.envs.names())}"))
    return out


def _duplicate_ids(cases: list[Case]) -> list[str]:
    seen: dict[str, Case] = {}
    out = []
    for case in cases:
        if case.id in seen:
            first = seen[case.id]
            out.append(f"{case.source}: case id {case.id!r} is also the id of a case of {first.source} "
                       f"(matrix points {first.point} and {case.point}); rename a scenario or change a value")
        else:
            seen[case.id] = case
    return out


def _unevaluated(cases: list[Case], registries, selected: list[str], candidates: list[str], where: str) -> list[str]:
    """A policy under test with no case would be promoted on no evidence at all."""
    wanted, origin = (selected, "--policy") if selected else (candidates, "the candidates (simgate_candidates)")
    covered = {c.policy for c in cases}
    out = []
    for name in dict.fromkeys(wanted):
        if name not in covered:
            env = registries.policies.get(name).env
            out.append(f"policy {name!r} (env {env!r}) has no scenario in {where}: add a scenario for env {env!r} "
                       f"or drop it from {origin}")
    return out


def _display(path: Path, rootdir: Path) -> str:
    """The path as the user wrote it, relative to the rootdir (a symlink is named, not its target)."""
    for candidate, root in ((path.absolute(), rootdir.absolute()), (path.parent.resolve() / path.name, rootdir.resolve())):
        try:
            return str(candidate.relative_to(root))
        except ValueError:
            continue
    return str(path)
