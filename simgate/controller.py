"""The run as the controller sees it: what was meant to run, what was selected, what reported.

Registered as a pytest plugin in every process. In a worker (and in a ``-n 0`` run, which is its
own worker) it notes which simgate cases collection selected and deselected. On the controller it
gathers the case records (validated against :mod:`simgate.contract`), compares them with the
cases the scenarios expand to, and writes the summary and the verdict of the run: complete only
when every case was selected, ran and reported, and the run was not interrupted.
"""

from __future__ import annotations

import ast
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from simgate import contract
from simgate.items import PROPERTY, arg_paths, case_of, is_worker
from simgate.reporting import allure
from simgate.reporting.promotion import EXIT_CODES, INVALID, PASS, outcome_line, verdict_document, verdict_lines
from simgate.reporting.store import RunStore
from simgate.reporting.summary import cost_lines, summary_document, table_lines

#: the node id of the item that carries a candidate's suite-level blocking (a regression alarm)
PROMOTION = "simgate::promotion[{}]"
#: what a worker tells the controller about its collection, through xdist's workeroutput
DESELECTED = "simgate_deselected"


class Controller:
    def __init__(self, config: pytest.Config, cases: list, reports: Path, scenarios: Path | None = None):
        self.config = config
        self.cases = {c.id: c for c in cases}
        self.reports = reports
        self.scenarios = scenarios  # the scenarios folder: a run pointed at it is a gate run
        self.nodeids: dict[str, str] = {}  # test node id → case id, from collection
        self.selected: set[str] = set()
        self.deselected: set[str] = set()  # seen deselected by pytest (-k, --lf, --deselect)
        self.results: dict[str, dict] = {}
        self.store = None
        self.summary_path = None
        self.verdict = None
        self.study: dict | None = None  # {"hash", "pinned"}: set by the plugin from configure
        self.write_error: str | None = None
        self.failed_cases: set[str] = set()  # cases whose own test item failed: the item shows why
        self._previous_sigterm = None
        self._started: float | None = None  # when the run began: the progress line's rate
        self._shown = 0  # how many records the last progress line counted
        self._episodes_done = 0  # over the records so far
        self._planned: tuple[int, int] | None = None  # selected cases and their episodes, once collected
        self._cut_short = False  # interrupted while collecting a run aimed at the gate: nothing collected

    # -- collection (every process that collects) ------------------------------------------------
    def pytest_deselected(self, items) -> None:
        self.deselected.update(case.id for item in items if (case := case_of(item)) is not None)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            case = case_of(item)
            if case is not None:
                self.nodeids[item.nodeid] = case.id
                self.selected.add(case.id)
        if is_worker(self.config):
            self.config.workeroutput[DESELECTED] = sorted(self.deselected)
        else:
            self._begin()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        """On an xdist controller, which collects nothing itself: the ids a worker will run. Each
        worker collects the same items (xdist checks), so any one of them tells."""
        # pytest writes a non-ASCII parameter id escaped ("reibung_\\xfc"): both forms name the case
        known = {**{_escaped(c): c for c in self.cases}, **{c: c for c in self.cases}}
        for nodeid in ids:
            cid = known.get(_param_id(nodeid))
            if cid in self.cases:
                self.nodeids[nodeid] = cid
                self.selected.add(cid)
        self._begin()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        self.deselected.update(getattr(node, "workeroutput", {}).get(DESELECTED, []))

    # -- the run -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Called by simgate's pytest plugin as it registers this one (too late for its own
        ``pytest_sessionstart``)."""
        if is_worker(self.config) or not self.cases:
            return
        self._previous_sigterm = sigterm_as_interrupt()

    def _begin(self) -> None:
        """Once collection shows a gate run: its folder, and verdict.json marked running."""
        if self.store is not None or not self.is_gate_run() or self.config.option.collectonly:
            return

        self._started = time.monotonic()
        self.store = RunStore(self.reports)
        try:
            self.store.start(len(self.cases))
        except OSError as exc:
            self.write_error = f"cannot write to {self.reports}: {exc}"

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the property with str()
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cid = self.nodeids.get(report.nodeid)
        if cid is not None and report.failed:
            self.failed_cases.add(cid)
        if not is_worker(self.config):  # a worker sends plain dicts: execnet serializes no subclass
            report.user_properties[:] = [(n, JsonRecord(v) if n == PROPERTY and isinstance(v, dict) else v)
                                         for n, v in report.user_properties]
        for name, value in report.user_properties:
            if name != PROPERTY:
                continue
            if cid is None:  # a record on a test collection did not show us: trust only known cases
                cid = value.get("case", {}).get("id") if isinstance(value, dict) else None
            case = self.cases.get(cid)
            if case is None or cid in self.results:
                return
            try:
                self._record(cid, contract.load(value, case))
            except contract.ContractError as exc:
                self._record(cid, contract.broken(case, "crashed", f"contract: {exc}", "contract"))
            return
        if cid is not None and report.failed and cid not in self.results:
            # no record at all: its worker crashed, a fixture broke, or the test itself raised
            detail = str(report.longrepr).strip().splitlines()[-1:] if report.longrepr else ["no detail"]
            self._record(cid, contract.broken(self.cases[cid], "crashed", f"crash: {detail[0]}"))

    def _record(self, cid: str, record: dict) -> None:
        self.results[cid] = record
        self._episodes_done += int(record.get("episodes") or 0)  # kept as it grows: the progress line

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        """After the item's own line: how far the run is (records arrive per case, not per episode)."""
        if is_worker(self.config) or len(self.results) == self._shown or not self._wants_progress():
            return
        self._shown = len(self.results)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(self.progress_line())

    def _wants_progress(self) -> bool:
        if self.config.option.verbose > 0:
            return True
        try:
            return sys.stdout.isatty()
        except (AttributeError, ValueError):  # a replaced or closed stdout
            return False

    def progress_line(self, now: float | None = None) -> str:
        if self._planned is None:  # items finish after collection: the selection no longer changes
            selected = [cid for cid in self.cases if cid in self.selected]
            self._planned = (len(selected), sum(int(self.cases[cid].episodes) for cid in selected))
        cases, total = self._planned
        done, reported = self._episodes_done, len(self.results)  # only collected cases are recorded
        elapsed = (now if now is not None else time.monotonic()) - (self._started or time.monotonic())
        line = f"simgate: cases {reported}/{cases}, episodes {done}/{total}"
        if elapsed > 0 and done > 0:
            rate = done / elapsed
            # a sequential case may stop early: the total is an upper bound, and so is the ETA
            eta = round(max(total - done, 0) / rate)
            line += f", {rate:.0f} episodes/s, ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
        return line

    def run_state(self, session: pytest.Session) -> dict:
        interrupted = (session.exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop)
                       or bool(session.shouldfail))
        selected = self.selected & set(self.cases)
        deselected = sorted(set(self.cases) - selected)
        missing = sorted(selected - set(self.results))
        if self._cut_short:  # none was collected: every case is missing, none was deselected
            deselected, missing = [], sorted(self.cases)
        return {"id": self.store.id if self.store else None, "cases": len(self.cases), "selected": len(selected),
                "reported": len(self.results), "deselected": deselected, "missing": missing,
                "interrupted": interrupted, "exitstatus": int(session.exitstatus),
                "complete": not deselected and not missing and not interrupted}

    def is_gate_run(self) -> bool:
        """Whether this session collected any simgate case (selected or not): a run of other
        tests in a repository that also has scenarios writes no verdict."""
        return bool(self.selected or self.deselected or self.results or self._cut_short)

    @pytest.hookimpl(tryfirst=True)  # the promotion items are logged before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        if (not is_worker(self.config) and not self.is_gate_run() and self.cases
                and session.exitstatus == pytest.ExitCode.INTERRUPTED and aimed_at_gate(self.config, self.scenarios)):
            self._cut_short = True  # Ctrl-C or SIGTERM while collecting the gate: INVALID, not pytest's 2
        if is_worker(self.config) or not self.is_gate_run() or self.config.option.collectonly:
            return
        self._begin()

        run = self.run_state(session)
        self.verdict = verdict_document(self.results, self.cases, run)
        self.verdict["study"] = self.study  # the study it was decided under: its hash, the pinned file if any
        self._log_promotion_items(session)
        try:
            self.summary_path = self.store.finish(summary_document(self.results, run), self.verdict)
        except OSError as exc:
            self.write_error = f"cannot write the run's summary and verdict to {self.reports}: {exc}"
        session.exitstatus = self.exit_code(session.exitstatus)
        self._junit_properties(int(session.exitstatus))
        alluredir = getattr(self.config.option, "allure_report_dir", None)
        if alluredir:
            allure.reconcile(alluredir, self.results, self.cases, self.verdict)

    def exit_code(self, status: int) -> int:
        """The outcome's exit code (0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 INVALID). pytest's usage
        error (4) and internal error (3) stay as they are; a verdict that could not be written is
        INVALID (its reader would find an earlier run's); a PASS leaves a failure of some other
        test of the session as pytest reported it."""

        if status in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
            return status
        if self.write_error:
            return EXIT_CODES[INVALID]
        decision = self.verdict["decision"]
        if decision == PASS and status != pytest.ExitCode.OK:
            return status
        return EXIT_CODES[decision]

    def _junit_properties(self, code: int) -> None:
        """The outcome as properties of JUnit's test suite, for CI systems that read only that file."""
        try:
            from _pytest.junitxml import xml_key  # where --junitxml keeps its writer (no public accessor)
        except ImportError:
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            xml.add_global_property("simgate.outcome", self.verdict["decision"])
            xml.add_global_property("simgate.exit_code", str(code))  # the process's, as the terminal's last line

    def pytest_unconfigure(self, config) -> None:
        """The outcome as the terminal's very last line, after pytest's own counts."""
        if is_worker(config) or (self.verdict is None and self.write_error is None):
            return
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return

        if self.write_error:  # the verdict a reader finds is not this run's
            line, red = f"simgate: INVALID (exit 3): {self.write_error}", True
        else:
            line, red = outcome_line(self.verdict), self.verdict["decision"] != "PASS"
        reporter.write_line(line, red=red, green=not red, bold=True)

    def _log_promotion_items(self, session: pytest.Session) -> None:
        """A candidate blocked by what no failed case item shows (a Holm-confirmed regression, or a
        case that passed or xfailed its item yet blocks) fails an item of its own, so every tool
        that reads pytest results (JUnit, Allure, --lf, CI dashboards) sees the blocking."""
        for policy, candidate in self.verdict["candidates"].items():
            reasons = promotion_reasons(candidate, self.failed_cases)
            if not reasons:
                continue
            nodeid = PROMOTION.format(policy)
            session.testscollected += 1  # the terminal's progress counts it: 100%, not 150%
            location = ("simgate", None, f"promotion[{policy}]")
            text = (f"{policy}: promotion blocked by {len(reasons)} finding(s) no case item shows "
                    f"(see verdict.json)\n" + "\n".join(f"  - {r}" for r in reasons))
            hook = self.config.hook
            hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
            for when, outcome, longrepr in (("setup", "passed", None), ("call", "failed", text),
                                            ("teardown", "passed", None)):
                hook.pytest_runtest_logreport(report=pytest.TestReport(
                    nodeid, location, {policy: 1, "simgate": 1}, outcome, longrepr, when))
            hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if is_worker(self.config) or self.verdict is None and self.write_error is None:
            return

        terminalreporter.section("simgate")
        order = list(self.cases)
        for line in table_lines(self.results, order, verbose=self.config.option.verbose > 0):
            terminalreporter.write_line(line)

        for line in cost_lines(self.results):
            terminalreporter.write_line(line)
        if self.verdict is not None:
            for label, ids in (("not selected", self.verdict["deselected"]), ("did not report", self.verdict["missing"])):
                if ids:
                    shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
                    terminalreporter.write_line(f"{label} ({len(ids)}): {shown}")
        if self.summary_path:
            terminalreporter.write_line(f"summary: {self.reports / 'summary.json'} (this run: {self.summary_path})")
        if self.write_error:
            terminalreporter.write_line(f"ERROR: {self.write_error}; pass --simgate-reports DIR", red=True)
        if self.verdict is not None:
            # a verdict that could not be written is not the file there: that one is an earlier run's
            where = str(self.reports / "verdict.json") if not self.write_error else "NOT WRITTEN, see the error above"
            for line in verdict_lines(self.verdict, where):
                terminalreporter.write_line(line)


def promotion_reasons(candidate: dict, failed_cases: set[str]) -> list[str]:
    """The blocking findings of a candidate that no failed case item already shows: every
    confirmed regression (a finding of the candidate's whole family, not of one case's test), and
    any finding about a case whose item did not fail. Read from the structured findings, never
    from their display text."""
    return [f"{f['case']}: {f['text']}" for f in candidate.get("findings", [])
            if f["kind"] == "regression" or f["case"] not in failed_cases]


class JsonRecord(dict):
    """A case record that JUnit XML (``str(value)``) writes as JSON, not as a Python repr."""

    def __str__(self) -> str:
        return json.dumps(self, sort_keys=True, default=str)


def _param_id(nodeid: str) -> str | None:
    """The parametrization part of a test node id (``...::test_scenario[<this>]``), read after the
    last ``::`` so that a ``[`` in a folder's name cannot shift it."""
    name = nodeid.rsplit("::", 1)[-1]
    if not name.endswith("]") or "[" not in name:
        return None
    return name[name.index("[") + 1:-1]


def _escaped(text: str) -> str:
    """A parameter id as pytest writes it into a node id (non-ASCII escaped, as
    ``_pytest.compat.ascii_escaped`` does for a str)."""
    return text.encode("unicode_escape").decode("ascii")


def aimed_at_gate(config: pytest.Config, scenarios: Path | None = None) -> bool:
    """Whether pytest was pointed at a gate, known without collecting anything: an argument that
    is, or is a folder holding, a test module with a test function taking ``simgate_result``
    (``suites/``), or the scenarios folder or a file in it. Read with ``ast``: a module that only
    mentions the name in a string (a test of simgate itself) is not a gate."""
    folder = scenarios.resolve() if scenarios is not None else None
    for path in arg_paths(config):
        if folder is not None and folder in (path, path.parent):
            return True
        modules = [path] if path.is_file() else sorted(path.rglob("test*.py"))[:200] if path.is_dir() else []
        if any(_defines_gate_test(module) for module in modules):
            return True
    return False


def _defines_gate_test(module: Path) -> bool:
    try:
        tree = ast.parse(module.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")
               and any(a.arg == "simgate_result" for a in node.args.args) for node in ast.walk(tree))


def sigterm_as_interrupt():
    """From now on a timeout or CI cancellation (SIGTERM) ends the run like Ctrl-C does, so it is
    reported as interrupted instead of leaving an earlier run's verdict. The handler it replaced,
    or None off the main thread (where none can be set)."""
    try:
        return signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:
        return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
