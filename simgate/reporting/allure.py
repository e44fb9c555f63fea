"""The only module that imports allure. Without allure-pytest installed every call is a no-op."""

from __future__ import annotations

import json

from simgate.verdict import SUCCESS_RATE


def _allure():
    try:
        import allure
    except ImportError:
        return None
    return allure


def report_case(result, host=None) -> None:
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
    allure.dynamic.severity(_severity(case))
    allure.attach(json.dumps(result.to_dict(), indent=1, sort_keys=True), name="metrics.json",
                  attachment_type=allure.attachment_type.JSON)
    if result.table:
        allure.attach(_csv(result.table), name="episodes.csv", attachment_type=allure.attachment_type.CSV)
    for name, png in _plots(result):
        allure.attach(png, name=name, attachment_type=allure.attachment_type.PNG)
    if host is not None and result.worst is not None and result.outcome != "PASS":
        _attach_worst_episode(allure, result, host)


def _attach_worst_episode(allure, result, host) -> None:
    """The worst episode replayed: its video (where MuJoCo can render), its trajectory, and the
    command that reproduces both, bit for bit."""
    import tempfile
    from pathlib import Path

    from simgate.replay import replay

    command = f"python -m simgate replay '{result.case.id}' {result.worst} --video"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            written = replay(result.case, result.worst, host, Path(tmp), video=True)
        except Exception as exc:  # a report extra must never fail the case
            allure.attach(f"{command}\n\nreplay failed here: {type(exc).__name__}: {exc}\n", name="replay",
                          attachment_type=allure.attachment_type.TEXT)
            return
        note = "" if written.get("video") else f"\n(no video: {written.get('video_error')})"
        allure.attach(f"{command}\n\nepisode {result.worst}: terminated={written['terminated']}, "
                      f"length={written['length']} control steps, trajectory sha256 of step fingerprints "
                      f"{written['state_hash']}{note}\n", name="replay", attachment_type=allure.attachment_type.TEXT)
        if written.get("video"):
            allure.attach.file(written["video"], name=f"worst episode {result.worst}",
                               attachment_type=allure.attachment_type.MP4)
        allure.attach.file(written["trajectory"], name=f"trajectory episode {result.worst}.npz",
                           extension="npz")


def _severity(case):
    import allure

    level = getattr(case, "severity", None) or ("normal" if case.gate else "minor")
    return allure.severity_level(level)


def _plots(result) -> list[tuple[str, bytes]]:
    """The case's pictures, if matplotlib is installed (the report is still useful without)."""
    try:
        from simgate.reporting import plots
    except ImportError:
        return []
    try:
        drawn = [("failure modes", plots.failure_modes(result.failure_modes, result.episodes)),
                 ("torque per joint", plots.joint_torque(result.table)),
                 ("time to fall", plots.time_to_fall(result.table, result.case.horizon))]
    except ImportError:  # matplotlib absent
        return []
    return [(name, png) for name, png in drawn if png is not None]


def _csv(table: dict[str, list]) -> str:
    names = list(table)
    rows = [",".join(names)]
    for i in range(len(table[names[0]])):
        rows.append(",".join("" if table[n][i] is None else str(table[n][i]) for n in names))
    return "\n".join(rows) + "\n"


#: modes the built-in rules produce; plugins' modes are added from the results they produced
BUILTIN_MODES = ("policy_error", "diverged", "nondeterministic", "saturated", "joint_limit", "oscillating", "fell",
                 "drift", "timeout", "setup_error", "crash", "unclassified")


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
    (out / "environment.properties").write_text("".join(f"{k}={v}\n" for k, v in _environment(results).items()))
    write_robustness_curves(out, results)


def _environment(results: dict[str, dict] | None = None) -> dict[str, str]:
    import os
    import platform
    import subprocess
    from importlib import metadata

    env = {"python": platform.python_version(), "machine": f"{platform.system()} {platform.machine()}",
           "cpus": str(os.cpu_count())}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    env["git_commit"] = commit or "unknown"
    for payload in (results or {}).values():
        policy = payload.get("policy_sha256")
        if policy:
            env[f"policy.{payload['case']['policy']}.sha256"] = policy
    for package in ("simgate", "mujoco", "onnxruntime", "torch", "gymnasium", "numpy"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = "not installed"
    return env


def write_robustness_curves(out, results: dict[str, dict]) -> None:
    """One extra Allure result per (scenario, policy, numeric matrix axis) with two or more
    points: the success rate across the sweep with its exact band. Written by the controller,
    which alone sees every case; without matplotlib, none."""
    import hashlib
    import time
    import uuid

    from simgate.reporting import (
        plots,  # matplotlib itself is imported when the first curve is drawn
    )
    groups: dict[tuple, list] = {}
    for payload in results.values():
        case = payload.get("case", {})
        point = case.get("point") or {}
        success = next((r for r in payload.get("requirements", []) if r["kind"] == SUCCESS_RATE), None)
        if success is None or len(point) != 1:
            continue
        (axis, value), = point.items()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        n = success["numbers"].get("n", payload.get("episodes", 0))
        k = success["numbers"].get("k", success["numbers"].get("successes", 0))
        groups.setdefault((case["scenario"], case["env"], case["policy"], axis, case.get("alpha", 0.05),
                           case.get("thresholds", {}).get("min_success_rate")), []).append((float(value), int(k), int(n)))
    for (scenario, env, policy, axis, alpha, required), points in sorted(groups.items(), key=lambda kv: kv[0][:4]):
        if len(points) < 2:
            continue
        try:
            png = plots.robustness_curve(axis, points, required, alpha, f"{scenario}: success vs {axis} ({policy})")
        except ImportError:
            return
        name = f"robustness curve: {scenario} over {axis} ({policy})"
        key = uuid.UUID(hashlib.sha256(name.encode()).hexdigest()[:32])
        attachment = f"{key}-attachment.png"
        (out / attachment).write_bytes(png)
        now = int(time.time() * 1000)
        result = {"uuid": str(key), "historyId": hashlib.md5(name.encode()).hexdigest(), "name": name,
                  "fullName": f"simgate.robustness.{scenario}.{axis}.{policy}", "status": "passed", "stage": "finished",
                  "start": now, "stop": now, "labels": [
                      {"name": "epic", "value": env}, {"name": "feature", "value": scenario.split(".")[0]},
                      {"name": "story", "value": scenario}, {"name": "suite", "value": "robustness curves"},
                      {"name": "policy", "value": policy}],
                  "parameters": [{"name": "axis", "value": axis}, {"name": "policy", "value": policy}],
                  "attachments": [{"name": "robustness curve", "source": attachment, "type": "image/png"}]}
        (out / f"{key}-result.json").write_text(json.dumps(result, indent=1))
