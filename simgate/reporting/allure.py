"""The only module that imports allure. Without allure-pytest installed every call is a no-op."""

from __future__ import annotations

import json


def _allure():
    try:
        import allure
    except ImportError:
        return None
    return allure


def report_case(result) -> None:
    allure = _allure()
    if allure is None:
        return
    case = result.case
    allure.dynamic.epic(case.env)
    allure.dynamic.feature(case.scenario.split(".")[0])
    allure.dynamic.story(case.scenario)
    allure.dynamic.label("scenario", case.scenario)
    allure.dynamic.label("env", case.env)
    allure.dynamic.label("policy", case.policy)
    allure.dynamic.tag(result.outcome)
    allure.dynamic.parameter("simgate_case", case.id, mode=allure.parameter_mode.HIDDEN)
    allure.dynamic.parameter("policy", case.policy)
    for name, value in case.point.items():
        allure.dynamic.parameter(name, value)
    for i, p in enumerate(case.perturbations):
        allure.dynamic.parameter(f"perturbation {i}: {p['kind']}", json.dumps(p["params"], sort_keys=True))
    for mode, count in result.failure_modes.items():
        allure.dynamic.label("failure_mode", mode)
    allure.attach(json.dumps(result.to_dict(), indent=1, sort_keys=True), name="metrics.json",
                  attachment_type=allure.attachment_type.JSON)
    if result.table:
        allure.attach(_csv(result.table), name="episodes.csv", attachment_type=allure.attachment_type.CSV)


def _csv(table: dict[str, list]) -> str:
    names = list(table)
    rows = [",".join(names)]
    for i in range(len(table[names[0]])):
        rows.append(",".join("" if table[n][i] is None else str(table[n][i]) for n in names))
    return "\n".join(rows) + "\n"


#: modes the built-in rules produce; plugins' modes are added from the results they produced
BUILTIN_MODES = ("fell", "diverged", "policy_error", "timeout", "setup_error", "crash", "unclassified")


def write_run_files(alluredir: str, results: dict[str, dict]) -> None:
    """``categories.json`` (one Allure category per failure mode) and ``environment.properties``
    in the results folder; called once, by the controller, after every case has reported."""
    import json
    from pathlib import Path

    out = Path(alluredir)
    out.mkdir(parents=True, exist_ok=True)
    seen = {mode for r in results.values() for mode in (r.get("failure_modes") or {})}
    categories = [{"name": "Needs more episodes (INCONCLUSIVE)", "matchedStatuses": ["failed"],
                   "messageRegex": r"(?s).*INCONCLUSIVE.*"}]
    for mode in sorted(set(BUILTIN_MODES) | seen):
        # a case belongs to its most frequent mode, the first listed in "failure modes (k of n
        # episodes): fell 3, timeout 1", or to the error that stopped it ("  policy_error: ...")
        regex = rf"(?s).*(failure modes \(\d+ of \d+ episodes\): {mode} \d+|\n  {mode}: ).*"
        categories.append({"name": f"Failure mode: {mode}", "matchedStatuses": ["failed", "broken"],
                           "messageRegex": regex})
    (out / "categories.json").write_text(json.dumps(categories, indent=1) + "\n")
    (out / "environment.properties").write_text("".join(f"{k}={v}\n" for k, v in _environment().items()))


def _environment() -> dict[str, str]:
    import os
    import platform
    from importlib import metadata

    env = {"python": platform.python_version(), "machine": f"{platform.system()} {platform.machine()}",
           "cpus": str(os.cpu_count())}
    for package in ("simgate", "mujoco", "onnxruntime", "torch", "gymnasium", "numpy"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = "not installed"
    return env
