"""The only module that imports allure. Without allure-pytest installed every call is a no-op.

On a worker, :func:`report_case` labels a case's result and attaches its evidence. Its status
message is rewritten (an allure-commons ``report_result`` hook, run before the result file is
written) to one line that groups in Allure's Categories tree, e.g.
``FAIL (gate) · primary failure mode: fell · failed: success rate``; the full verdict block moves to
the trace. Informational cases (``gate: false``) stay xfail (Allure: skipped) and their line says
``(informational, gate: false)``, which their own categories match. On the controller,
:func:`write_run_files` writes the categories, the environment, the report's name (the
promotion decision) and one "promotion overview" result."""

from __future__ import annotations

import json
import re

from simgate.reporting.message import replay_command
from simgate.verdict import NOT_WORSE, SUCCESS_RATE, TORQUE_VS_BASELINE

#: requirement kind → how a failed one reads in the status line (records whose baseline findings
#: were decided per case; now the controller judges them as one family and they never fail here)
_PHRASES = {SUCCESS_RATE: "success rate", NOT_WORSE: "regression vs baseline (success)",
            TORQUE_VS_BASELINE: "regression vs baseline (torque)"}
INFORMATIONAL = "informational, gate: false"
#: the label (not shown by Allure 2) that names a result's case: for the rewriting hook and for
#: machines reading the results (docs/screenshots/shoot.js finds cases by it)
CASE_LABEL = "simgate_case"


def _allure():
    try:
        import allure
    except ImportError:
        return None
    return allure


def headline(result) -> str:
    """The one-line status of a case that did not pass: outcome, gate, primary mode, what failed."""
    case = result.case
    modes = list(result.failure_modes)
    found = _search_modes(result)
    primary = modes[0] if modes else f"{found[0]} · found by the search" if found else "none (every episode succeeded)"
    failed = [_PHRASES.get(r.kind, r.name) for r in result.requirements if r.outcome != "PASS"]
    line = f"{result.outcome} ({'gate' if case.gate else INFORMATIONAL}) · primary failure mode: {primary}"
    if failed:
        line += f" · {'failed' if result.outcome == 'FAIL' else 'undecided'}: {', '.join(dict.fromkeys(failed))}"
    return line


def _search_modes(result) -> list[str]:
    """Failure modes of a search case's counterexamples, in their order: what failed when the
    case's own episodes all succeeded (its Categories entry)."""
    from simgate.reporting.search_plots import counterexamples_of

    search = getattr(result, "search", None) or {}
    return list(dict.fromkeys(c.get("mode") for c in counterexamples_of(search) if c.get("mode")))


_PENDING: dict[str, dict] = {}  # case id → what the rewriting hook puts into its result


def _register_rewriter() -> None:
    """An allure-commons plugin that runs before the file logger (tryfirst) on every finished
    result: the status line, the trace and clean parameters of the results report_case marked."""
    import allure_commons
    from allure_commons.model2 import Parameter, StatusDetails

    if allure_commons.plugin_manager.get_plugin("simgate-rewriter") is not None:
        return

    class Rewriter:
        @allure_commons.hookimpl(tryfirst=True)
        def report_result(self, result):
            case_id = next((label.value for label in result.labels if label.name == CASE_LABEL), None)
            pending = _PENDING.pop(case_id, None) if case_id else None
            if pending is None:
                return
            # allure-pytest shows every pytest parameter, quoted (repr); these are the case's own
            result.parameters = [Parameter(name="simgate_case", value=case_id, mode="hidden")] + [
                Parameter(name=name, value=value) for name, value in pending["parameters"]]
            if result.status in ("failed", "skipped") and pending.get("headline"):
                result.statusDetails = StatusDetails(message=pending["headline"], trace=pending["message"])

    allure_commons.plugin_manager.register(Rewriter(), "simgate-rewriter")


def report_case(result, host=None) -> None:
    allure = _allure()
    if allure is None:
        return
    from simgate.reporting.message import case_message

    case = result.case
    point = ", ".join(f"{name}={_text(value)}" for name, value in case.point.items())
    allure.dynamic.title(f"{case.scenario}{f' [{point}]' if point else ''} · {case.policy}")
    # Behaviors: env > scenario > matrix point; Suites: gate or informational > scenario > policy
    allure.dynamic.epic(case.env)
    allure.dynamic.feature(case.scenario)
    allure.dynamic.story(point or "default conditions")
    allure.dynamic.parent_suite(f"{case.env}: {'gate' if case.gate else INFORMATIONAL}")
    allure.dynamic.suite(case.scenario)
    allure.dynamic.sub_suite(case.policy)
    allure.dynamic.label("scenario", case.scenario)
    allure.dynamic.label("env", case.env)
    allure.dynamic.label("policy", case.policy)
    allure.dynamic.label(CASE_LABEL, case.id)
    allure.dynamic.tag(result.outcome)
    if not case.gate:
        allure.dynamic.tag("informational")
    for mode in result.failure_modes:
        allure.dynamic.label("failure_mode", mode)
    allure.dynamic.severity(_severity(case))
    parameters = [("policy", case.policy)] + [(name, _text(value)) for name, value in case.point.items()]
    parameters += [(f"perturbation {i + 1}: {p['kind']}", ", ".join(f"{k}={_text(v)}" for k, v in p["params"].items()))
                   for i, p in enumerate(case.perturbations)]
    failed = result.outcome != "PASS"
    _PENDING[case.id] = {"parameters": parameters, "headline": headline(result) if failed else None,
                         "message": case_message(result)}
    _register_rewriter()
    allure.dynamic.description_html(_case_html(result))
    allure.attach(json.dumps(result.to_dict(), indent=1, sort_keys=True), name="metrics.json",
                  attachment_type=allure.attachment_type.JSON)
    if result.table:
        allure.attach(_csv(result.table), name="episodes.csv", attachment_type=allure.attachment_type.CSV)
    for name, png in _plots(result):
        allure.attach(png, name=name, attachment_type=allure.attachment_type.PNG)
    search = getattr(result, "search", None)
    if search:
        _report_search(allure, result, search, host)
    if host is not None and result.worst is not None and failed:
        _attach_worst_episode(allure, result, host)


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "..".join(_text(v) for v in value) if len(value) == 2 else ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return f"{value:g}" if isinstance(value, float) else str(value)


def _case_html(result) -> str:
    """The case's requirements as a table, its failure modes (primary, and how many also fell)."""
    import html
    import math

    e = html.escape
    colour = {"PASS": "#1e8449", "FAIL": "#a93226", "INCONCLUSIVE": "#b9770e"}
    case = result.case
    rows = "".join(f"<tr><td style='padding:2px 8px'>{e(r.name)}</td><td style='padding:2px 8px;font-weight:bold;"
                   f"color:{colour.get(r.outcome, '#333')}'>{r.outcome}</td><td style='padding:2px 8px'>{e(r.observed)}</td>"
                   f"<td style='padding:2px 8px'>{e(r.threshold)}</td><td style='padding:2px 8px'>{e(r.bound)}</td></tr>"
                   for r in result.requirements)
    out = [f"<p><b>{result.outcome}</b>" + ("" if case.gate else " — informational (<code>gate: false</code>): shown, "
                                            "never blocking") + "</p>"]
    if result.error:
        out.append(f"<pre>{e(result.error)}</pre>")
    if rows:
        out.append("<table style='border-collapse:collapse'><tr><th align=left>requirement</th><th align=left>verdict"
                   "</th><th align=left>observed</th><th align=left>required</th><th align=left>bound / test</th></tr>"
                   f"{rows}</table>")
    if result.failure_modes:
        fell = [t is not None and math.isfinite(t) for t in result.table.get("time_to_fall", [])]
        primary = result.table.get("failure_mode", [])
        items = []
        for mode, count in result.failure_modes.items():
            also = sum(1 for m, f in zip(primary, fell) if m == mode and f) if mode != "fell" else 0
            items.append(f"<li><b>{e(mode)}</b> {count}" + (f" (of which {also} also fell)" if also else "")
                         + (f": e.g. {e(result.examples[mode])}" if mode in result.examples else "") + "</li>")
        out.append(f"<p>Failure modes, one per failed episode (its primary mode: the first rule that matches), "
                   f"{sum(result.failure_modes.values())} of {result.episodes} episodes:</p><ul>{''.join(items)}</ul>")
    if result.worst is not None and result.outcome != "PASS":
        out.append(f"<p>Replay the worst episode: <code>{e(replay_command(case.id, result.worst))}</code></p>")
    search = getattr(result, "search", None)
    if search:
        out.append(search_html(search))
    return "\n".join(out)


# -- search cases ----------------------------------------------------------------------------------
#: counterexamples rendered as videos per case (each is a full episode on the reference engine)
MAX_COUNTEREXAMPLE_VIDEOS = 4
#: the label that ties a counterexample's result to its search case
COUNTEREXAMPLE_LABEL = "simgate_counterexample_of"


def search_html(search: dict) -> str:
    """The search in the case's description: plain HTML (Allure 2 strips styles and images)."""
    import html

    from simgate.reporting.search_plots import summary_lines

    lines = summary_lines(search)
    items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines)
    return ("<h4>Search over the parameter space</h4>"
            f"<ul>{items}</ul><p>Pictures: the attachments named <b>search: …</b>; each counterexample is a result "
            "of its own (<i>counterexample: …</i>, same suite).</p>")


def _report_search(allure, result, search: dict, host) -> None:
    """A search case's pictures, its dict and summary, and one Allure result per counterexample."""
    from simgate.reporting import search_plots
    from simgate.reporting.search_plots import counterexamples_of

    try:
        drawn = search_plots.pictures(search)
    except Exception as exc:  # a report extra must never fail the case
        drawn = []
        allure.attach(f"the search pictures failed here: {type(exc).__name__}: {exc}\n", name="search pictures",
                      attachment_type=allure.attachment_type.TEXT)
    for name, png in drawn:
        allure.attach(png, name=name, attachment_type=allure.attachment_type.PNG)
    allure.attach("\n".join(search_plots.summary_lines(search)) + "\n", name="search summary",
                  attachment_type=allure.attachment_type.TEXT)
    allure.attach(json.dumps(search, indent=1, sort_keys=True), name="search.json",
                  attachment_type=allure.attachment_type.JSON)
    out = results_dir()
    if out is not None and counterexamples_of(search):
        write_counterexamples(out, result.case, search, host)


def results_dir():
    """The folder allure-pytest writes into (its file logger's), or None without one: results
    written beside the test's own must land where ``--alluredir`` said, on this worker too."""
    try:
        import allure_commons
        from allure_commons.logger import AllureFileLogger
    except ImportError:
        return None
    for plugin in allure_commons.plugin_manager.get_plugins():
        if isinstance(plugin, AllureFileLogger):
            return plugin._report_dir
    return None


def counterexample_name(c: dict, search: dict) -> str:
    from simgate.reporting.search_plots import axes_of, counterexample_title

    return f"counterexample: {counterexample_title(c, axes_of(search))}"


def write_counterexamples(out, case, search: dict, host=None) -> list[dict]:
    """One Allure result per counterexample of a search case, written into ``out`` as the
    promotion overview is (a synthetic result): failed for a gating case, skipped (Allure's
    informational) otherwise; its parameters, failure mode, the shrinking, the replay command,
    and, with ``host`` and where MuJoCo renders, the episode's video with the row's parameters.
    Deterministic file names (case, counterexample): a rerun into the same folder replaces them."""
    import hashlib
    import html
    import time
    import uuid
    from pathlib import Path

    from simgate.reporting.search_plots import axes_of, counterexamples_of, fmt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    axes = {a["name"]: a for a in axes_of(search)}
    # a counterexample blocks only where the case gates on the envelope (require:
    # holds_inside_envelope, gate on); otherwise it is shown the informational way (skipped)
    gate = bool(getattr(case, "gate", True)) and bool((getattr(case, "search", None) or {}).get("require"))
    written = []
    for n, c in enumerate(counterexamples_of(search)):
        name = counterexample_name(c, search)
        params = c.get("params") or {}
        mode = c.get("mode") or "unclassified"
        key = str(uuid.UUID(hashlib.sha256(f"counterexample:{case.id}:{n}".encode()).hexdigest()[:32]))
        attachments: list[dict] = []
        attach = _attacher(out, key, attachments)

        command = c.get("replay") or ""
        shrunk = c.get("shrunk_from") or {}
        lines = [f"{case.id}: counterexample {n + 1} inside the operating envelope", f"episode index {c.get('index')}"]
        lines += [f"  {k} = {fmt(v, (axes.get(k) or {}).get('unit', ''))}" for k, v in params.items()]
        lines.append(f"primary failure mode: {mode}")
        if shrunk.get("params"):
            lines.append("shrunk toward nominal from: " + ", ".join(
                f"{k}={fmt(v, (axes.get(k) or {}).get('unit', ''))}" for k, v in shrunk["params"].items())
                + (f", episode {shrunk.get('index')}" if shrunk.get("index") is not None else ""))
        if command:
            lines.append(f"replay: {command}")
        text = "\n".join(lines) + "\n"
        if host is not None and n < MAX_COUNTEREXAMPLE_VIDEOS:
            text += _counterexample_video(case, c, host, attach)
        attach("replay", text.encode(), "txt", "text/plain")
        attach("counterexample.json", json.dumps(c, indent=1, sort_keys=True).encode(), "json", "application/json")
        e = html.escape
        # one line each: Allure 2 flattens a table's cells into one run of text
        rows = "".join(f"<li>{e(k)} = <b>{e(fmt(v, (axes.get(k) or {}).get('unit', '')))}</b> (nominal "
                       f"{e(fmt((axes.get(k) or {}).get('nominal'), (axes.get(k) or {}).get('unit', '')))}, envelope "
                       f"{e(_envelope_text(axes.get(k)))})</li>" for k, v in params.items())
        description = (f"<p>A failing episode inside the operating envelope of <b>{e(case.id)}</b>, shrunk toward "
                       f"nominal: primary failure mode <b>{e(mode)}</b>, episode index {e(str(c.get('index')))}.</p>"
                       f"<ul>{rows}</ul>"
                       + (f"<p>Before shrinking: {e(', '.join(f'{k}={fmt(v)}' for k, v in shrunk.get('params', {}).items()))}"
                          "</p>" if shrunk.get("params") else "")
                       + (f"<p>Replay it: <code>{e(command)}</code></p>" if command else ""))
        headline = (f"COUNTEREXAMPLE ({'gate' if gate else INFORMATIONAL}) · primary failure mode: {mode} · "
                    f"{name.split(': ', 1)[1]} · inside the envelope of {case.id}")
        now = int(time.time() * 1000)
        record = {
            "uuid": key, "historyId": hashlib.md5(f"{case.id}:{json.dumps(params, sort_keys=True)}:{c.get('index')}".encode()).hexdigest(),
            "name": name, "fullName": f"simgate.search.{case.id}.counterexample{n + 1}",
            "status": "failed" if gate else "skipped", "stage": "finished", "start": now, "stop": now,
            "statusDetails": {"message": headline, "trace": text},
            "descriptionHtml": description,
            "labels": [{"name": "parentSuite", "value": f"{case.env}: {'gate' if gate else INFORMATIONAL}"},
                       {"name": "suite", "value": case.scenario}, {"name": "subSuite", "value": case.policy},
                       {"name": "epic", "value": case.env}, {"name": "feature", "value": case.scenario},
                       {"name": "story", "value": "counterexamples (search)"},
                       {"name": "severity", "value": "critical" if gate else "minor"},
                       {"name": "tag", "value": "counterexample"}, {"name": "failure_mode", "value": mode},
                       {"name": "policy", "value": case.policy}, {"name": COUNTEREXAMPLE_LABEL, "value": case.id}],
            "parameters": [{"name": "case", "value": case.id}, {"name": "episode", "value": str(c.get("index"))}]
                          + [{"name": k, "value": fmt(v, (axes.get(k) or {}).get("unit", ""))} for k, v in params.items()],
            "attachments": attachments}
        (out / f"{key}-result.json").write_text(json.dumps(record, indent=1))
        written.append(record)
    return written


def _envelope_text(axis: dict | None) -> str:
    from simgate.reporting.search_plots import fmt

    env = (axis or {}).get("envelope")
    if isinstance(env, (list, tuple)) and len(env) == 2:
        return f"{fmt(env[0])}–{fmt(env[1], axis.get('unit', ''))}"
    return "at nominal"


def _counterexample_video(case, c: dict, host, attach) -> str:
    """The counterexample's episode replayed with its row's parameters: video and its last frame.
    Returns a line for the replay note (what was rendered, or why not)."""
    import tempfile
    from pathlib import Path

    from simgate.replay import replay

    with tempfile.TemporaryDirectory() as tmp:
        try:
            written = replay(case, int(c.get("index", 0)), host, Path(tmp), video=True, failure_mode=c.get("mode"),
                             params=c.get("params") or {})
        except Exception as exc:  # a report extra must never fail the case
            return f"\nreplay failed here: {type(exc).__name__}: {exc}\n"
        if written.get("still"):
            attach("how it ended", Path(written["still"]).read_bytes(), "png", "image/png")
        if written.get("video"):
            attach(f"episode {c.get('index')} ({c.get('mode') or written.get('terminated')})",
                   Path(written["video"]).read_bytes(), "mp4", "video/mp4")
            return (f"\nreplayed: the episode ended {written.get('terminated') or 'at the horizon'} after "
                    f"{written.get('length')} control steps; trajectory sha256 {written.get('state_hash')}\n")
        return f"\n(no video: {written.get('video_error')})\n"


def _attach_worst_episode(allure, result, host) -> None:
    """The worst episode replayed: its video (where MuJoCo can render), its trajectory, and the
    command that reproduces both, bit for bit."""
    import tempfile
    from pathlib import Path

    from simgate.replay import replay

    command = replay_command(result.case.id, result.worst)
    modes = result.table.get("failure_mode") or []
    index = (result.table.get("episode") or []).index(result.worst) if result.worst in (result.table.get("episode") or []) else None
    primary = modes[index] if index is not None and index < len(modes) else None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            written = replay(result.case, result.worst, host, Path(tmp), video=True, failure_mode=primary)
        except Exception as exc:  # a report extra must never fail the case
            allure.attach(f"{command}\n\nreplay failed here: {type(exc).__name__}: {exc}\n", name="replay",
                          attachment_type=allure.attachment_type.TEXT)
            return
        note = "" if written.get("video") else f"\n(no video: {written.get('video_error')})"
        mode = f"primary failure mode {primary} (the first matching rule); " if primary else ""
        allure.attach(f"{command}\n\nepisode {result.worst}: {mode}the episode ended: {written['terminated'] or 'at the horizon'}, "
                      f"after {written['length']} control steps; trajectory sha256 of step fingerprints "
                      f"{written['state_hash']}{note}\n", name="replay", attachment_type=allure.attachment_type.TEXT)
        if written.get("still"):
            allure.attach.file(written["still"], name=f"worst episode {result.worst}: how it ended",
                               attachment_type=allure.attachment_type.PNG)
        if written.get("video"):
            allure.attach.file(written["video"], name=f"worst episode {result.worst} ({primary or written['terminated']})",
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

        requirements = [r.to_dict() for r in result.requirements]
        drawn = [("failure modes", plots.failure_modes(result.failure_modes, result.episodes, result.table)),
                 ("torque per joint" + (" vs baseline" if any(r["kind"] == TORQUE_VS_BASELINE for r in requirements) else ""),
                  plots.joint_torque(result.table, requirements, result.case.alpha)),
                 ("time to fall", plots.time_to_fall(result.table, result.case.horizon))]
        if any(r["kind"] == "frequency_response" for r in requirements):  # a policy inspection's Bode plot
            from simgate.reporting.bode import bode

            drawn += [("Bode plot", bode(r["numbers"])) for r in requirements if r["kind"] == "frequency_response"]
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
BUILTIN_MODES = ("policy_error", "diverged", "nondeterministic", "slipped", "saturated", "joint_limit", "oscillating",
                 "fell", "drift", "timeout", "setup_error", "crash", "unclassified")


def categories(results: dict[str, dict]) -> list[dict]:
    """Allure 2 categories over the status lines :func:`headline` writes: one per failure mode for
    gating cases (failed, broken), one per mode for informational ones (xfail: skipped), the
    regressions against the baseline, and the undecided cases."""
    seen = {mode for r in results.values() for mode in (r.get("failure_modes") or {})}
    out = []
    for mode in sorted(set(BUILTIN_MODES) | seen):
        m = re.escape(mode)
        out.append({"name": f"Failure mode: {mode}", "matchedStatuses": ["failed", "broken"],
                    "messageRegex": (rf"(?s)\w+ \(gate\) · primary failure mode: {m}( ·.*)?"
                                      rf"|.*failure modes \(\d+ of \d+ episodes\): {m} \d+.*|.*\n  {m}: .*")})
    for mode in sorted(set(BUILTIN_MODES) | seen):
        out.append({"name": f"Failure mode: {mode} (informational, gate: false)", "matchedStatuses": ["skipped"],
                    "messageRegex": rf"(?s)\w+ \({INFORMATIONAL}\) · primary failure mode: {re.escape(mode)}( ·.*)?"})
    out.insert(0, {"name": "Promotion decision (the overview)", "matchedStatuses": ["failed", "broken"],
                   "messageRegex": r"(?s)promotion (BLOCKED|INCOMPLETE|UNKNOWN).*"})
    out.append({"name": "Regression against the baseline", "matchedStatuses": ["failed", "skipped"],
                "messageRegex": r"(?s).* · (failed|undecided): .*regression vs baseline.*"})
    out.append({"name": "Needs more episodes (INCONCLUSIVE)", "matchedStatuses": ["failed", "skipped"],
                "messageRegex": r"(?s)INCONCLUSIVE \(.*"})
    return out


def write_run_files(alluredir: str, results: dict[str, dict], verdict: dict | None = None) -> None:
    """``categories.json``, ``environment.properties``, ``executor.json`` (the report's name says
    the promotion decision) and the promotion overview result, in the results folder; called
    once, by the controller, after every case has reported."""
    from pathlib import Path

    out = Path(alluredir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "categories.json").write_text(json.dumps(categories(results), indent=1) + "\n")
    environment = {**_promotion_lines(verdict), **_environment(results)}
    (out / "environment.properties").write_text("".join(f"{k}={_property(v)}\n" for k, v in environment.items()))
    if verdict:
        decision = verdict.get("decision", "?")
        (out / "executor.json").write_text(json.dumps({
            "name": "simgate", "type": "simgate", "buildName": f"run {verdict.get('run') or ''}".strip(),
            "reportName": f"simgate: promotion {decision}"}, indent=1) + "\n")
    write_overview(out, results, verdict)


def _property(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", " ")


def _promotion_lines(verdict: dict | None) -> dict[str, str]:
    if not verdict:
        return {}
    from simgate.reporting.overview import candidate_state

    lines = {"promotion": verdict.get("decision", "?")}
    for policy, candidate in (verdict.get("candidates") or {}).items():
        lines[f"promotion.{policy}"] = candidate_state(candidate)[0]
    return lines


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


OVERVIEW_STATUS = {"ALLOWED": "passed", "BLOCKED": "failed"}  # anything else (INCOMPLETE): broken


def write_overview(out, results: dict[str, dict], verdict: dict | None) -> dict:
    """One extra result, "promotion overview": its status is the decision (ALLOWED passed,
    BLOCKED failed, INCOMPLETE broken), its description the overview page, its attachments the
    same page, the verdict and every chart (the robustness curves are pictures here, not test
    results of their own: the report's counts count cases). Returns the result written."""
    import hashlib
    import time
    import uuid

    from simgate.reporting import overview

    charts = overview._charts(results, verdict)
    page = overview.overview_html(results, verdict, charts)
    verdict = verdict or {}
    decision = verdict.get("decision", "UNKNOWN")
    name = "promotion overview"
    key = str(uuid.UUID(hashlib.sha256(f"{name}:{verdict.get('run')}".encode()).hexdigest()[:32]))
    attachments: list[dict] = []
    attach = _attacher(out, key, attachments)

    full = f"<!doctype html><meta charset='utf-8'><title>simgate promotion overview</title>{page}"
    attach("promotion overview.html", full.encode(), "html", "text/html")
    attach("verdict.json", json.dumps(verdict, indent=1, sort_keys=True).encode(), "json", "application/json")
    for section in ("baseline", "curves"):
        for label, png in charts.get(section, []):
            attach(label, png, "png", "image/png")
    lines = [f"promotion {decision}"] + [f"{policy}: {overview.candidate_state(c)[0]}"
                                         for policy, c in (verdict.get("candidates") or {}).items()]
    now = int(time.time() * 1000)
    result = {"uuid": key, "historyId": hashlib.md5(name.encode()).hexdigest(), "name": f"{name}: {decision}",
              "fullName": "simgate.promotion.overview", "status": OVERVIEW_STATUS.get(decision, "broken"),
              "statusDetails": {"message": "; ".join(lines)}, "stage": "finished", "start": now, "stop": now,
              "descriptionHtml": overview.description_html(results, verdict),
              "labels": [{"name": "parentSuite", "value": "promotion"}, {"name": "suite", "value": "promotion overview"},
                         {"name": "epic", "value": "promotion"}, {"name": "feature", "value": "promotion overview"},
                         {"name": "severity", "value": "blocker"}, {"name": "tag", "value": decision}],
              "parameters": [], "attachments": attachments}
    (out / f"{key}-result.json").write_text(json.dumps(result, indent=1))
    return result


def _attacher(out, key: str, attachments: list):
    """``attach(label, body, suffix, mime)`` for a result written by hand (the promotion overview,
    a counterexample): the file beside the results, named from the result's key and the label so
    a second run overwrites it, and its entry appended to ``attachments``."""
    import hashlib
    import uuid

    def attach(label: str, body: bytes, suffix: str, mime: str) -> None:
        source = f"{uuid.UUID(hashlib.sha256(f'{key}:{label}'.encode()).hexdigest()[:32])}-attachment.{suffix}"
        (out / source).write_bytes(body)
        attachments.append({"name": label, "source": source, "type": mime})

    return attach
