"""The only module that imports allure. Without allure-pytest installed every call is a no-op.

On a worker, :func:`report_case` labels a case's result and attaches its evidence (charts, the
episode table, the worst episode's video, a search's pictures and its counterexamples as steps).
A worker knows only its own case, so what it writes about the decision is provisional. On the
controller, once the regression families are judged, :func:`reconcile` rewrites every case's
result from the final records (:mod:`simgate.reporting.final`): its status, its status line
(which its category matches), its decision block and tags; and writes one result per candidate
whose status is its promotion decision, the categories, the environment and the report's name.
So the report's pages, statuses, categories and counts are those of ``verdict.json``."""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path

from simgate.commands import provenance
from simgate.replay import replay
from simgate.reporting import overview, plots, search_plots
from simgate.reporting.bode import bode
from simgate.reporting.final import CANDIDATE_STATUS, REASONS, candidate_decision, case_states, decision_html
from simgate.reporting.message import case_message, replay_command
from simgate.reporting.overview import candidate_state
from simgate.reporting.search_plots import axes_of, counterexample_title, counterexamples_of, fmt, summary_lines
from simgate.verdict import REGRESSION_KINDS, TORQUE_VS_BASELINE

INFORMATIONAL = "informational, gate: false"
#: the label (not shown by Allure 2) that names a result's case: for the rewriting hook and for
#: machines reading the results (docs/screenshots/shoot.js finds cases by it)
CASE_LABEL = "simgate_case"
#: the decision block of a case's description, between these: the controller replaces it
DECISION_START, DECISION_END = "<!--simgate:decision-->", "<!--/simgate:decision-->"
#: labels a worker writes for the controller: how many episodes fell, and their primary modes
FALLS_LABEL = "simgate_falls"
#: how a candidate's page names a case; ``python -m simgate report`` turns it into a link to the
#: case's page once the generator has given each result its uid (:func:`link_cases`)
CASE_REF = "<b>case {}</b>"


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
    failed = [r.name for r in result.requirements if r.outcome != "PASS" and r.kind not in REGRESSION_KINDS]
    line = f"{result.outcome} ({'gate' if case.gate else INFORMATIONAL}) · primary failure mode: {primary}"
    if failed:
        line += f" · {'failed' if result.outcome == 'FAIL' else 'undecided'}: {', '.join(dict.fromkeys(failed))}"
    return line


def _search_modes(result) -> list[str]:
    """Failure modes of a search case's counterexamples, in their order: what failed when the
    case's own episodes all succeeded (its Categories entry)."""

    search = getattr(result, "search", None) or {}
    return list(dict.fromkeys(c.get("mode") for c in counterexamples_of(search) if c.get("mode")))


_PENDING: dict[str, dict] = {}  # case id → what the rewriting hook puts into its result


def _register_rewriter() -> None:
    """An allure-commons plugin that runs before the file logger (tryfirst) on every finished
    result: the status line, the trace and clean parameters of the results report_case marked."""
    import allure_commons
    from allure_commons.model2 import Attachment, Parameter, StatusDetails, TestStepResult

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
            for step in pending.get("steps", []):  # a search's counterexamples: evidence of this case
                result.steps.append(TestStepResult(
                    name=step["name"], status=step["status"], stage="finished", start=result.start, stop=result.stop,
                    statusDetails=StatusDetails(message=step["message"], trace=step["trace"]),
                    parameters=[Parameter(name=k, value=v) for k, v in step["parameters"]],
                    attachments=[Attachment(name=a["name"], source=a["source"], type=a["type"])
                                 for a in step["attachments"]]))

    allure_commons.plugin_manager.register(Rewriter(), "simgate-rewriter")


def report_case(result, host=None) -> None:
    allure = _allure()
    if allure is None:
        return

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
    falls = falls_of(result)
    if falls is not None:
        allure.dynamic.label(FALLS_LABEL, json.dumps(falls, sort_keys=True))
    allure.dynamic.severity(_severity(case))
    parameters = [("policy", case.policy)] + [(name, _text(value)) for name, value in case.point.items()]
    parameters += [(f"perturbation {i + 1}: {p['kind']}", ", ".join(f"{k}={_text(v)}" for k, v in p["params"].items()))
                   for i, p in enumerate(case.perturbations)]
    failed = result.outcome != "PASS"
    _PENDING[case.id] = {"parameters": parameters, "headline": headline(result) if failed else None,
                         "message": case_message(result), "steps": []}
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
    """The case's page: the decision block (provisional here, replaced by the controller's), then
    the evidence: how episodes ended (falls first, their causes beside), the worst episode's
    replay, the search. Plain lists: Allure 2 flattens a table's cells into one run of text."""

    e = html.escape
    case = result.case
    items = []
    for r in result.requirements:
        if r.kind in REGRESSION_KINDS:  # the candidate's family decides these, on the controller
            items.append(f"<li><b>judged by the family</b> {e(r.name)}: observed {e(r.observed)} (see verdict.json)</li>")
        else:
            items.append(f"<li><b>{e(r.outcome)}</b> {e(r.name)}: observed {e(r.observed)}; required "
                         f"{e(r.threshold)}; {e(r.bound)}</li>")
    out = [DECISION_START, f"<p><b>{e(result.outcome)}</b>" + ("" if case.gate else " (informational, gate: false)")
           + "</p>", f"<ul>{''.join(items)}</ul>" if items else "", DECISION_END]
    if result.error:
        out.append(f"<pre>{e(result.error)}</pre>")
    falls = falls_of(result)
    if falls is not None and falls["fell"]:
        causes = ", ".join(f"{mode} {n}" for mode, n in falls["causes"].items())
        out.append(f"<p><b>Fell: {falls['fell']} of {result.episodes} episodes</b>"
                   + (f" (primary failure mode of those: {e(causes)})" if causes else "") + "</p>")
    if result.failure_modes:
        listed = "".join(f"<li><b>{e(mode)}</b> {count}" + (f": e.g. {e(result.examples[mode])}" if mode in result.examples
                                                            else "") + "</li>"
                         for mode, count in result.failure_modes.items())
        out.append(f"<p>Failed episodes by primary failure mode (the first rule that matches; a fall is counted above "
                   f"whatever its mode), {sum(result.failure_modes.values())} of {result.episodes}:</p><ul>{listed}</ul>")
    if result.worst is not None and result.outcome != "PASS":
        out.append(f"<p>Replay the worst episode: <code>{e(replay_command(case.id, result.worst))}</code> "
                   f"({e(_provenance(result))})</p>")
    search = getattr(result, "search", None)
    if search:
        out.append(search_html(search))
    return "\n".join(o for o in out if o)


def falls_of(result) -> dict | None:
    """How many of the case's episodes fell (a finite time to fall), and the primary failure mode
    each of those was filed under: for a robotics reader the fall is the outcome, saturation or
    a joint limit a cause. None without a time-to-fall column."""

    times = (result.table or {}).get("time_to_fall")
    if times is None:
        return None
    modes = (result.table or {}).get("failure_mode") or [None] * len(times)
    fell = [m for t, m in zip(times, modes) if t is not None and math.isfinite(t)]
    causes: dict[str, int] = {}
    for mode in fell:
        causes[mode or "none"] = causes.get(mode or "none", 0) + 1
    return {"fell": len(fell), "causes": dict(sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])))}


def _provenance(result) -> str:
    return provenance(_git_commit(), getattr(result, "policy_sha256", None))


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    """The checkout's commit, asked of git once per process (every case page and finding cites it)."""

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# -- search cases ----------------------------------------------------------------------------------
#: counterexamples rendered as videos per case (each is a full episode on the reference engine)
MAX_COUNTEREXAMPLE_VIDEOS = 4


def search_html(search: dict) -> str:
    """The search in the case's description: plain HTML (Allure 2 strips styles and images)."""

    lines = summary_lines(search)
    items = "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines)
    return ("<h4>Search over the parameter space</h4>"
            f"<ul>{items}</ul><p>Pictures: the attachments named <b>search: …</b>; each failing episode the search "
            "found is a step of this result (<i>counterexample: …</i>, or <i>example: …</i> inside a region the "
            "certificate passes).</p>")


def _report_search(allure, result, search: dict, host) -> None:
    """A search case's pictures, its dict and summary; its counterexamples become steps of its
    result when the controller rewrites it (:func:`counterexample_steps`)."""

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
    if out is not None and counterexamples_of(search) and result.case.id in _PENDING:
        _PENDING[result.case.id]["steps"] += counterexample_steps(out, result.case, search, host)


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
    return f"counterexample: {counterexample_title(c, axes_of(search))}"


def counterexample_kind(case, search: dict) -> tuple[str, str]:
    """(what a failing episode of the search is called, its step's status). Inside a region the
    certificate passes, a failed episode is an *example* of the failures the certified rate
    allows, not a counterexample; only where the case gates on the envelope and the certificate
    did not pass does it count against the policy."""
    certified = ((search.get("certificate") or {}).get("status")) == "PASS"
    gated = bool(getattr(case, "gate", True)) and bool((getattr(case, "search", None) or {}).get("require"))
    if certified:
        return "example", "skipped"
    return ("counterexample", "failed") if gated else ("counterexample (informational)", "skipped")


def counterexample_steps(out, case, search: dict, host=None) -> list[dict]:
    """One step of the case's result per failing episode the search found and shrank: its
    parameters, failure mode, the shrinking, the replay command and, with ``host`` and where
    MuJoCo renders, the episode's video. Steps, not results: the report's counts count decisions,
    and an episode is evidence of its case's decision. Attachments are written into ``out`` with
    names made from (case, index), so a rerun into the same folder replaces them."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    axes = {a["name"]: a for a in axes_of(search)}
    kind, status = counterexample_kind(case, search)
    steps = []
    for n, c in enumerate(counterexamples_of(search)):
        title = counterexample_name(c, search).split(": ", 1)[1]
        params = c.get("params") or {}
        mode = c.get("mode") or "unclassified"
        key = str(uuid.UUID(hashlib.sha256(f"counterexample:{case.id}:{n}".encode()).hexdigest()[:32]))
        attachments: list[dict] = []
        attach = _attacher(out, key, attachments)
        command = c.get("replay") or ""
        shrunk = c.get("shrunk_from") or {}
        lines = [f"{case.id}: {kind} {n + 1} inside the operating envelope", f"episode index {c.get('index')}"]
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
        steps.append({"name": f"{kind}: {title}", "status": status, "message": f"{kind} · primary failure mode: {mode}",
                      "trace": text, "attachments": attachments,
                      "parameters": [("episode", str(c.get("index")))]
                                    + [(k, fmt(v, (axes.get(k) or {}).get("unit", ""))) for k, v in params.items()]})
    return steps


def _envelope_text(axis: dict | None) -> str:
    env = (axis or {}).get("envelope")
    if isinstance(env, (list, tuple)) and len(env) == 2:
        return f"{fmt(env[0])}–{fmt(env[1], axis.get('unit', ''))}"
    return "at nominal"


def _counterexample_video(case, c: dict, host, attach) -> str:
    """The counterexample's episode replayed with its row's parameters: video and its last frame.
    Returns a line for the replay note (what was rendered, or why not)."""

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
        requirements = [r.to_dict() for r in result.requirements]
        drawn = [("failure modes", plots.failure_modes(result.failure_modes, result.episodes, result.table)),
                 ("torque per joint" + (" vs baseline" if any(r["kind"] == TORQUE_VS_BASELINE for r in requirements) else ""),
                  plots.joint_torque(result.table, requirements, result.case.alpha)),
                 ("time to fall", plots.time_to_fall(result.table, result.case.horizon))]
        if any(r["kind"] == "frequency_response" for r in requirements):  # a policy inspection's Bode plot
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


def categories(results: dict[str, dict] | None = None) -> list[dict]:
    """Allure 2 categories: one per (reason a case blocks, or informational and did not pass) ×
    (the mode it is filed under: ``fell`` when any episode fell, else its most frequent primary
    mode), and one for the candidates' decisions. They match the first words of the status lines
    :mod:`simgate.reporting.final` writes, so a result falls under exactly one, and the
    categories' counts are the decisions of ``verdict.json`` (cases, never episodes)."""

    seen = {mode for r in (results or {}).values() for mode in (r.get("failure_modes") or {})}
    modes = sorted(set(BUILTIN_MODES) | seen | {"none"})
    out = [{"name": "Promotion decision: not promotable", "matchedStatuses": ["failed", "broken"],
            "messageRegex": r"(?s)promotion (FAIL|INCONCLUSIVE|INVALID)\b.*"}]
    names = {"requirement": "Blocks promotion: requirement not met",
             "regression": "Blocks promotion: regression against the baseline (confirmed by the family)",
             "inconclusive": "Blocks promotion: needs more episodes (INCONCLUSIVE)",
             "error": "Blocks promotion: case error",
             "nondeterministic": "Blocks promotion: the episodes do not repeat (INVALID)",
             "informational": "Informational (gate: false): did not pass"}
    statuses = {"requirement": ["failed"], "regression": ["failed"], "inconclusive": ["broken"], "error": ["broken"],
                "nondeterministic": ["broken"],
                "informational": ["skipped"]}
    for reason, name in names.items():
        for mode in modes:
            out.append({"name": f"{name} · {mode}", "matchedStatuses": statuses[reason],
                        "messageRegex": rf"(?s){re.escape(REASONS[reason])} · {re.escape(mode)}( · .*)?"})
    return out


def reconcile(alluredir: str, results: dict[str, dict], cases: dict, verdict: dict | None) -> dict:
    """Rewrite every case's result in ``alluredir`` from the final records (see the module's
    docstring) and write the run's own files: one result per candidate, the categories, the
    environment and the report's name. Called once, by the controller, after the verdict.
    Returns {case id: status written}."""

    out = Path(alluredir)
    out.mkdir(parents=True, exist_ok=True)
    ours = {}
    for path in sorted(out.glob("*-result.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # not ours to judge: the generator says what is wrong with it
        cid = _label(record, CASE_LABEL)
        if cid is not None and cid in results:
            ours[path] = (cid, record)
    falls = {cid: json.loads(_label(record, FALLS_LABEL) or "{}").get("fell", 0) for cid, record in ours.values()}
    states = case_states(results, cases, verdict, falls)
    written = {}
    for path, (cid, record) in ours.items():
        _rewrite(record, states[cid])
        path.write_text(json.dumps(record, indent=1))
        written[cid] = record["status"]
    (out / "categories.json").write_text(json.dumps(categories(results), indent=1) + "\n")
    environment = {**_promotion_lines(verdict), **_environment(results)}
    (out / "environment.properties").write_text("".join(f"{k}={_property(v)}\n" for k, v in environment.items()))
    (out / "executor.json").write_text(json.dumps({
        "name": "simgate", "type": "simgate", "buildName": f"run {(verdict or {}).get('run') or ''}".strip(),
        "reportName": report_name(verdict)}, indent=1) + "\n")
    write_candidates(out, results, verdict)
    return written


def _label(record: dict, name: str) -> str | None:
    return next((label.get("value") for label in record.get("labels", []) if label.get("name") == name), None)


def _rewrite(record: dict, state) -> None:
    """One case's result as the final decision has it."""

    record["status"] = state.status
    details = record.get("statusDetails") or {}
    record["statusDetails"] = {"message": state.headline, "trace": details.get("trace") or details.get("message") or ""}
    page = record.get("descriptionHtml") or ""
    block = decision_html(state)
    if DECISION_START in page and DECISION_END in page:
        head, rest = page.split(DECISION_START, 1)
        page = head + DECISION_START + block + DECISION_END + rest.split(DECISION_END, 1)[1]
    else:
        page = DECISION_START + block + DECISION_END + page
    record["descriptionHtml"] = page
    labels = [lb for lb in record.get("labels", []) if lb.get("name") not in ("tag", "severity")]
    labels.append({"name": "tag", "value": state.reason})
    if not state.gate:
        labels.append({"name": "tag", "value": "informational"})
    severity = "blocker" if state.status in ("failed", "broken") else ("minor" if not state.gate else "normal")
    labels.append({"name": "severity", "value": severity})
    record["labels"] = labels


def report_name(verdict: dict | None) -> str:
    """The report's name (its first page's title): each candidate's decision, not the run's one
    word, so a report where one candidate may ship does not read as 'nothing may ship'."""

    candidates = (verdict or {}).get("candidates") or {}
    if not candidates:
        return f"simgate: promotion {(verdict or {}).get('decision', 'UNKNOWN')}"
    parts = [f"{policy} {candidate_decision(c)}" for policy, c in candidates.items()]
    incomplete = "" if (verdict or {}).get("complete", True) else " (incomplete run)"
    return "simgate: " + " · ".join(parts) + incomplete


def _property(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", " ")


def _promotion_lines(verdict: dict | None) -> dict[str, str]:
    if not verdict:
        return {}

    lines = {"promotion": verdict.get("decision", "?")}
    for policy, candidate in (verdict.get("candidates") or {}).items():
        lines[f"promotion.{policy}"] = candidate_state(candidate)[0]
    return lines


def _environment(results: dict[str, dict] | None = None) -> dict[str, str]:
    env = {"python": platform.python_version(), "machine": f"{platform.system()} {platform.machine()}",
           "cpus": str(os.cpu_count())}
    env["git_commit"] = _git_commit() or "unknown"
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


def write_candidates(out, results: dict[str, dict], verdict: dict | None) -> list[dict]:
    """One result per candidate, ``promotion: <policy>: PASS | FAIL | INCONCLUSIVE | INVALID``,
    its status the outcome's (passed, failed, broken, broken): the candidate's "why" page. Its description
    lists each finding that decides it, with its numbers, its case's replay command; its
    attachments are the promotion overview page (the matrix, the failure modes ranked, candidate
    vs baseline, the robustness curves, as pictures of this result, not results of their own),
    verdict.json and the charts. Returns the results written."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    verdict = verdict or {}
    charts = overview._charts(results, verdict)
    page = overview.overview_html(results, verdict, charts)
    shared: list[dict] = []
    attach = _attacher(out, f"promotion:{verdict.get('run')}", shared)
    attach("promotion overview.html", f"<!doctype html><meta charset='utf-8'><title>simgate promotion overview</title>"
                                      f"{page}".encode(), "html", "text/html")
    attach("verdict.json", json.dumps(verdict, indent=1, sort_keys=True).encode(), "json", "application/json")
    for section in ("baseline", "curves"):
        for label, png in charts.get(section, []):
            attach(label, png, "png", "image/png")
    candidates = verdict.get("candidates") or {}
    if not candidates:  # no verdict: the run decided nothing, and the report says so
        candidates = {"(no verdict)": {"passed": False, "complete": False, "blocking": [],
                                       "not_evaluated": ["the run wrote no verdict"]}}
    written = []
    now = int(time.time() * 1000)
    for policy, candidate in candidates.items():
        decision = candidate_decision(candidate)
        name = f"promotion: {policy}"
        key = str(uuid.UUID(hashlib.sha256(f"{name}:{verdict.get('run')}".encode()).hexdigest()[:32]))
        findings = candidate.get("blocking", []) + candidate.get("not_evaluated", [])
        message = f"promotion {decision} · {policy}" + (f" · {len(findings)} finding(s)" if findings else "")
        record = {"uuid": key, "historyId": hashlib.md5(name.encode()).hexdigest(), "name": f"{name}: {decision}",
                  "fullName": f"simgate.promotion.{policy}", "status": CANDIDATE_STATUS[decision],
                  "statusDetails": {"message": message, "trace": "\n".join(findings)},
                  "stage": "finished", "start": now, "stop": now,
                  "descriptionHtml": candidate_html(policy, candidate, decision, results),
                  "labels": [{"name": "parentSuite", "value": "promotion"}, {"name": "suite", "value": policy},
                             {"name": "epic", "value": "promotion"}, {"name": "feature", "value": policy},
                             {"name": "severity", "value": "blocker"}, {"name": "tag", "value": decision},
                             {"name": "host", "value": "controller"}, {"name": "thread", "value": "verdict"},
                             {"name": "policy", "value": policy}],
                  "parameters": [], "attachments": list(shared)}
        (out / f"{key}-result.json").write_text(json.dumps(record, indent=1))
        written.append(record)
    return written


def candidate_html(policy: str, candidate: dict, decision: str, results: dict[str, dict]) -> str:
    """A candidate's "why" page: one line per finding that decides it, each with the case's
    requirement numbers and the command replaying its worst episode. Plain lists (Allure 2)."""

    e = html.escape
    by_case = {}
    for f in candidate.get("findings", []):
        by_case.setdefault(f["case"], []).append(f)
    items = []
    for cid, found in by_case.items():
        payload = results.get(cid, {})
        rows = "".join(f"<li>{e(f['text'])}</li>" for f in found)
        worst = payload.get("worst_episode")
        replay = (f"<li>replay its worst episode: <code>{e(replay_command(cid, worst))}</code> "
                  f"({e(provenance(_git_commit(), payload.get('policy_sha256')))})</li>") if worst is not None else ""
        items.append(f"<li>{CASE_REF.format(e(cid))}<ul>{rows}{replay}</ul></li>")
    items += [f"<li>{e(line)}</li>" for line in candidate.get("not_evaluated", [])]
    warnings = "".join(f"<li>{e(w)}</li>" for w in candidate.get("warnings", []))
    n = len(candidate.get("blocking", []))
    head = {"PASS": "may be promoted: every gating case passed and no regression was confirmed",
            "FAIL": f"not promotable: blocked by {n} finding(s), a requirement not met or a confirmed regression",
            "INCONCLUSIVE": f"not decided: {n} finding(s) need more episodes to settle",
            "INVALID": "not decided: the evidence cannot be trusted (a case not evaluated, crashed or not "
                       "repeatable, or the run incomplete)"}[decision]
    return (f"<p><b>{e(policy)}: {e(decision)}</b>, {e(head)}.</p>" + (f"<ul>{''.join(items)}</ul>" if items else "")
            + (f"<p>Warnings (shown, never blocking):</p><ul>{warnings}</ul>" if warnings else "")
            + "<p>The whole run on one page (matrix, failure modes, candidate vs baseline, robustness curves): the "
            "attachment <b>promotion overview.html</b>.</p>")


def link_cases(report) -> int:
    """In a generated Allure 2 report, make every case a candidate's page names a link to that
    case's page (the generator assigns the uids, so this is done after it). Returns the number of
    links made."""

    cases = Path(report) / "data" / "test-cases"
    pages = {p: json.loads(p.read_text(encoding="utf-8")) for p in cases.glob("*.json")}
    uids = {}
    for page in pages.values():
        cid = next((lb.get("value") for lb in page.get("labels", []) if lb.get("name") == CASE_LABEL), None)
        if cid is not None:
            uids[html.escape(cid)] = page["uid"]
    pattern = re.compile(re.escape(CASE_REF).replace(re.escape("{}"), "([^<]+)"))
    made = 0
    for path, page in pages.items():
        text = page.get("descriptionHtml") or ""
        linked, n = pattern.subn(lambda m: (f"<a href='#testresult/{uids[m.group(1)]}'>{m.group(0)}</a>"
                                            if m.group(1) in uids else m.group(0)), text)
        if linked != text:
            page["descriptionHtml"] = linked
            path.write_text(json.dumps(page), encoding="utf-8")
            made += linked.count("#testresult/") - text.count("#testresult/")
    return made


def _attacher(out, key: str, attachments: list):
    """``attach(label, body, suffix, mime)`` for a result written by hand (the promotion overview,
    a counterexample): the file beside the results, named from the result's key and the label so
    a second run overwrites it, and its entry appended to ``attachments``."""

    def attach(label: str, body: bytes, suffix: str, mime: str) -> None:
        source = f"{uuid.UUID(hashlib.sha256(f'{key}:{label}'.encode()).hexdigest()[:32])}-attachment.{suffix}"
        (out / source).write_bytes(body)
        attachments.append({"name": label, "source": source, "type": mime})

    return attach
