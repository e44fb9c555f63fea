"""simgate inside pytest: options, scenario expansion at configure time, the case fixtures,
and the controller-side summary. Loaded through the ``pytest11`` entry point.

Results cross xdist workers only as records of :mod:`simgate.contract` on
``report.user_properties``; the controller (:mod:`simgate.controller`) alone checks that the run
is complete, writes ``summary.json`` and ``verdict.json`` and prints the table.
"""

from __future__ import annotations

import json
import signal
import types
from pathlib import Path

import pytest

from simgate import scaleout, study
from simgate.controller import Controller, aimed_at_gate, sigterm_as_interrupt
from simgate.envs.info import EnvInfoCache
from simgate.errors import SimgateError
from simgate.items import PROPERTY, arg_paths, is_worker
from simgate.plugin_manager import FOLDER, Host
from simgate.replay import choose_gl
from simgate.reporting import allure
from simgate.reporting.message import case_message
from simgate.reporting.store import ReportsError, RunStore, check_replaceable, check_writable
from simgate.robots.configure import ContractMismatch, check_contracts, load_notes
from simgate.runner import run_case
from simgate.scenarios.expand import load_cases
from simgate.scenarios.loader import REGRESSIONS
from simgate.study import StudyError

HOST = pytest.StashKey[object]()
CASES = pytest.StashKey[list]()
SCENARIO_FILES = pytest.StashKey[int]()  # how many scenario files this process collected
STUDY = pytest.StashKey[dict]()  # {"hash", "pinned"}: the study this run is decided under (controller)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simgate", "simgate: sim evaluation gate for robot policies")
    group.addoption("--scenarios", metavar="DIR", default=None,
                    help="directory of scenario YAML files (default: ini simgate_scenarios, 'scenarios')")
    group.addoption("--policy", metavar="NAME", action="append", default=[],
                    help="policy under test (repeatable; default: ini simgate_candidates)")
    group.addoption("--simgate-engine", choices=("auto", "batched", "reference"), default="auto",
                    help="auto (default): batched where the env allows, else reference; both give "
                         "bit-identical results")
    group.addoption("--simgate-reports", metavar="DIR", default=None,
                    help="where summary.json and verdict.json go (default: ini simgate_reports, 'reports')")
    group.addoption("--baseline", metavar="NAME", action="append", default=None,
                    help="the promoted policy to compare candidates with, episode for episode (repeatable: "
                         "one per env; default: ini simgate_baselines; --baseline none switches it off)")
    group.addoption("--simgate-max-cases", metavar="N", type=int, default=None,
                    help="most cases a run may expand to (matrix points x policies; default 10000)")
    group.addoption("--simgate-cache", metavar="DIR", default=None,
                    help="episode result cache (default: <reports>/cache); 'none' recomputes everything")
    group.addoption("--simgate-ray", metavar="ADDRESS", default=None,
                    help="compute the episodes on Ray before the items run: 'local' starts a Ray runtime here, "
                         "anything else ('auto', 'host:6379', 'ray://host:10001') joins that cluster "
                         "(pip install -e \".[ray]\"); not with -n")
    group.addoption("--simgate-study", metavar="FILE", default=None,
                    help="the pinned study (python -m simgate plan --write FILE): a run whose scenarios, "
                         "policies, baseline or design differ from it is refused as INVALID (exit 3), nothing run")
    group.addoption("--simgate-plan", metavar="FILE", default=None,
                    help="write the study of this selection to FILE, print the plan, run nothing "
                         "(what python -m simgate plan --write FILE does)")
    parser.addini("simgate_scenarios", "directory of scenario YAML files", default="scenarios")
    parser.addini("simgate_candidates", "policies evaluated when --policy is not given", type="linelist", default=[])
    parser.addini("simgate_reports", "directory for summary.json", default="reports")
    parser.addini("simgate_baselines", "promoted policies, one per env: candidates are compared with them",
                  type="linelist", default=[])


def _check_keyword(config: pytest.Config) -> None:
    """A ``-k`` pytest cannot parse, found on the controller: under xdist each worker would fail to
    parse it on its own, which xdist reports as crashed workers (INTERNALERROR)."""
    from _pytest.mark.expression import Expression

    expression = config.getoption("keyword", "")
    if not expression or is_worker(config):
        return
    try:
        Expression.compile(expression)
    except SyntaxError as exc:
        hint = ("; pytest's -k does not accept '=': match the value instead, e.g. -k \"slippery and 0.3\""
                if "=" in expression else "")
        raise pytest.UsageError(f"Wrong expression passed to '-k': {exc.text}: at column {exc.offset}: {exc.msg}{hint}") from None


def pytest_configure(config: pytest.Config) -> None:
    if is_worker(config):
        _configure(config)
        return
    previous = sigterm_as_interrupt()  # a CI cancel while the scenarios load: as Ctrl-C, below
    try:
        _configure(config)
    except KeyboardInterrupt:
        if not aimed_at_gate(config, _scenarios_dir(config)):
            raise  # a session of other tests: pytest's own "interrupted" (2), no verdict
        message = ("interrupted (Ctrl-C or SIGTERM) while simgate loaded the scenarios, before any case ran: "
                   "nothing was judged; run it again")
        _record_refusal(config, message, "INVALID")
        pytest.exit(f"simgate: INVALID (exit 3): {message}", returncode=3)
    finally:
        if previous is not None:  # the controller sets its own for the session
            signal.signal(signal.SIGTERM, previous)


def _configure(config: pytest.Config) -> None:
    _check_keyword(config)

    if getattr(config.option, "allure_report_dir", None):
        choose_gl()  # before MuJoCo is first imported: the report's worst-episode videos
    explicit = config.getoption("scenarios")
    directory = _scenarios_dir(config)
    try:
        plugins = _project_plugins(config)
        host = Host(project_plugins=plugins)
        config.stash[HOST] = host
        if explicit is None and not directory.is_dir():
            stray = _stray_scenario_folders(config, directory.name)
            # ``pytest /elsewhere/scenarios`` (a folder of YAML files named as the scenarios folder is):
            # not a project without scenarios, but pytest started outside the project folder
            if stray:
                raise pytest.UsageError(
                    f"simgate: pytest was given {stray[0]}, which holds YAML files, but this run's scenarios folder "
                    f"is {directory}, which does not exist: the project folder is the one pytest was started in "
                    f"({project_dir(config)}), as no pytest.ini or pyproject.toml names another; start pytest in "
                    f"the folder that holds scenarios/, envs/ and policies/ (cd {stray[0].parent} && pytest "
                    f"{stray[0].name}/), or pass --scenarios")
            config.stash[CASES] = []  # a project without scenarios (e.g. simgate's own tests)
            return
        # model-aware checks build each env once: on the controller only, before workers start
        env_info = None if is_worker(config) else EnvInfoCache(host.registries.envs)
        config.stash[CASES] = load_cases(directory, project_dir(config), host.registries,
                                         config.getoption("policy"), config.getini("simgate_candidates"), env_info,
                                         baselines=_baselines(config), **_max_cases(config),
                                         check_digests=not is_worker(config))
        if config.stash[CASES] and not is_worker(config):
            cases = config.stash[CASES]
            for note in check_contracts(cases, host.registries) + load_notes(cases, host.registries):
                config.issue_config_time_warning(UserWarning(note), stacklevel=2)
            _check_outputs(config)
            _study(config, cases, host)
            if config.getoption("simgate_ray"):
                scaleout.configure(config, root=project_dir(config), cache_dir=_cache_dir(config),
                                   reports_dir=_reports_dir(config), plugins=plugins, host=host)
        elif not config.stash[CASES] and _scenarios_in_args(config, directory):
            raise SimgateError(_no_cases(config))  # said here: under xdist no worker could say it
    except SimgateError as exc:
        # not usage errors: the evidence would not be the study's, or not the trained policy's
        if isinstance(exc, (StudyError, ContractMismatch)):
            _record_refusal(config, str(exc), "INVALID")
            pytest.exit(f"simgate: INVALID (exit 3): {exc}", returncode=3)
        if not is_worker(config):
            _record_refusal(config, str(exc))
        raise pytest.UsageError(str(exc)) from None


def _study(config: pytest.Config, cases: list, host) -> None:
    """The study of this run (its hash goes into the verdict); written and printed instead of a
    run with ``--simgate-plan``; checked against the pinned one with ``--simgate-study``."""

    # the last run's baseline rates, read before this run replaces summary.json
    measured = study.measured_rates(_reports_dir(config) / "summary.json")
    document = study.document(cases, host.registries, project_dir(config), measured)
    planned = config.getoption("simgate_plan")
    if planned:
        path = _path(config, planned)
        try:
            path.write_text(json.dumps(document, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
        except OSError as exc:
            raise SimgateError(f"--simgate-plan {planned}: cannot write the study ({exc.strerror or exc})") from None
        lines = study.plan_lines(document) + [f"study written to {path}; gate on it with --simgate-study {planned}"]
        pytest.exit("\n".join(lines), returncode=0)
    pinned_path = config.getoption("simgate_study")
    if pinned_path:
        pinned = study.load(_path(config, pinned_path))
        changed = study.differences(pinned, document)
        if changed:
            shown = changed[:20] + ([f"... and {len(changed) - 20} more"] if len(changed) > 20 else [])
            raise study.StudyError(f"--simgate-study {pinned_path}: this run differs from the pinned study "
                                   f"{pinned['hash'][:12]} in {len(changed)} way(s); pin it again with python -m "
                                   "simgate plan --write FILE if the change is intended:\n  " + "\n  ".join(shown))
    config.stash[STUDY] = {"hash": document["hash"], "pinned": pinned_path}


def _record_refusal(config: pytest.Config, message: str, decision: str = "ERROR") -> None:
    """A run refused at configure time leaves a verdict that says so, not an earlier run's."""

    try:
        RunStore(_reports_dir(config)).refuse(message, decision)
    except OSError:
        pass  # the reports folder itself is the problem: the message says so


def _check_outputs(config: pytest.Config) -> None:
    """The reports and cache folders can be written: found now, not after every episode ran."""

    try:
        check_writable(_reports_dir(config))
        check_replaceable(_reports_dir(config))
        cache = _cache_dir(config)
        if cache is not None:
            if cache.exists() and not cache.is_dir():
                raise ReportsError(f"the episode cache {cache} is a file, not a folder; remove it, or pass "
                                   "--simgate-cache DIR (or --simgate-cache none to run without a cache)")
            check_writable(cache, "--simgate-cache")
    except ReportsError as exc:
        raise SimgateError(str(exc)) from None


def _max_cases(config: pytest.Config) -> dict:
    value = config.getoption("simgate_max_cases")
    if value is not None and value < 1:
        raise SimgateError(f"--simgate-max-cases {value}: give a positive number of cases")
    return {} if value is None else {"max_cases": value}


def _baselines(config: pytest.Config) -> list[str]:
    given = config.getoption("baseline")
    names = given if given is not None else config.getini("simgate_baselines")
    return [n for n in names if n.lower() != "none"]


def _scenarios_dir(config: pytest.Config) -> Path:
    return _path(config, config.getoption("scenarios") or config.getini("simgate_scenarios"))


def _reports_dir(config: pytest.Config) -> Path:
    return _path(config, config.getoption("simgate_reports") or config.getini("simgate_reports"))


def _cache_dir(config: pytest.Config) -> Path | None:
    value = config.getoption("simgate_cache")
    if value is not None and value.lower() == "none":
        return None
    return _path(config, value) if value else _reports_dir(config) / "cache"


def project_dir(config: pytest.Config) -> Path:
    """The project's folder: pytest's rootdir where a configuration file fixed it; without one
    (a folder of YAML files only, ``pytest scenarios/``), the folder pytest was started in, not
    pytest's guess (the common ancestor of the arguments: the scenarios folder itself)."""
    if config.inipath is None:
        return Path(config.invocation_params.dir)
    return config.rootpath


def _path(config: pytest.Config, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else project_dir(config) / path


def _project_plugins(config: pytest.Config) -> list[str]:
    """Module names listed in ``simgate_plugins`` by loaded conftest files (like pytest_plugins);
    a project that lists none is a folder of YAML files: the folder itself is the plugin (its
    robots and manifests, :data:`plugin_manager.FOLDER`). A project with plugin modules
    registers its YAML files from them (``register_robots``, ``register_manifests``), so every
    process, a Ray worker's copy of the project included, registers each file once."""

    names: list[str] = []
    for plugin in config.pluginmanager.get_plugins():
        listed = getattr(plugin, "simgate_plugins", None)
        if isinstance(listed, (list, tuple)) and getattr(plugin, "__file__", "").endswith("conftest.py"):
            names.extend(n for n in listed if n not in names)
    return names or [FOLDER + str(project_dir(config))]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "simgate_case" in metafunc.fixturenames:
        cases = metafunc.config.stash.get(CASES, [])
        source = getattr(metafunc.module, SOURCE, None)
        if source is not None:  # a scenario file collected as a test module: its own cases
            cases = [c for c in cases if _path(metafunc.config, c.source).resolve() == Path(source).resolve()]
        metafunc.parametrize("simgate_case", cases, ids=[c.id for c in cases])


# -- scenario files as tests ---------------------------------------------------------------------
# ``pytest scenarios/`` (or ``pytest`` with the scenarios folder among the collected paths) makes
# each YAML file in the scenarios folder a test module with one test, ``test_scenario``,
# parametrized with that file's cases: node ids ``scenarios/pushes.yaml::test_scenario[<case>]``,
# the same bracket ids as a Python test module that requests ``simgate_case``. One rule keeps a
# case from running twice: when the session also collects a Python test that requests
# ``simgate_case`` (this repository's suites/test_scenarios.py), that module is the gate and the
# YAML items are dropped before selection.

SOURCE = "__simgate_scenario_file__"  # the synthetic module's attribute naming its YAML file
SCENARIO_SUFFIXES = (".yaml", ".yml")


def test_scenario(simgate_result):
    """The gate: every case of the scenario file must meet its thresholds."""
    simgate_result.check()


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    config = parent.config
    if file_path.suffix.lower() not in SCENARIO_SUFFIXES:
        return None

    folder = _scenarios_dir(config).resolve()
    if file_path.resolve().parent not in (folder, folder / REGRESSIONS):
        return None  # other YAML (CI files, test data) is not a scenario
    config.stash[SCENARIO_FILES] = config.stash.get(SCENARIO_FILES, 0) + 1
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.Module):
    """A scenario YAML file as a test module: its one test function, parametrized with its cases
    by ``pytest_generate_tests`` (so fixtures, -k, --lf and xdist work as for Python tests)."""

    def _getobj(self):
        module = types.ModuleType(f"simgate_scenarios.{self.path.stem}")
        module.__file__ = str(self.path)
        setattr(module, SOURCE, str(self.path))
        module.test_scenario = test_scenario
        return module

    def collect(self):
        source = self.path.resolve()
        if not any(_path(self.config, c.source).resolve() == source for c in self.config.stash.get(CASES, [])):
            return []  # no policy under test for this file's env: no item (pytest would add a skipped one)
        return super().collect()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    from_yaml = [i for i in items if _from_scenario_file(i)]
    if not from_yaml:
        return
    if any("simgate_case" in getattr(i, "fixturenames", ()) and not _from_scenario_file(i) for i in items):
        items[:] = [i for i in items if not _from_scenario_file(i)]  # the Python test module is the gate


def _from_scenario_file(item) -> bool:
    module = getattr(item, "module", None)
    return module is not None and getattr(module, SOURCE, None) is not None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Scenario files collected but not one case: say why instead of pytest's bare "no tests ran"."""
    config = session.config
    if config.stash.get(SCENARIO_FILES, 0) and not config.stash.get(CASES, []):
        raise pytest.UsageError(_no_cases(config))


def _no_cases(config: pytest.Config) -> str:
    return (f"{_scenarios_dir(config)}: the scenario files define no case to run, because no policy is under "
            "test: pass --policy NAME, list candidates in simgate_candidates (pytest configuration), or give "
            "a scenario 'policies: [NAME, ...]'")


def _stray_scenario_folders(config: pytest.Config, name: str) -> list[Path]:
    """The folders called ``name`` (the scenarios folder's name) among pytest's arguments, or
    holding a file among them, with YAML files in them: only those are read, so a project
    without scenarios pays nothing for pointing pytest at its own folders."""
    out = []
    for path in arg_paths(config):
        folder = path if path.is_dir() else path.parent if path.suffix in (".yaml", ".yml") else None
        if folder is not None and folder.name == name and folder not in out and (
                any(folder.glob("*.yaml")) or any(folder.glob("*.yml"))):
            out.append(folder)
    return out


def _scenarios_in_args(config: pytest.Config, directory: Path) -> bool:
    """Whether pytest was pointed at the scenarios folder or a file in it (``pytest scenarios/``)."""
    return any(path == directory.resolve() or path.parent == directory.resolve() for path in arg_paths(config))


@pytest.fixture
def simgate_case():
    raise pytest.UsageError("simgate_case is parametrized by simgate from the scenario files; "
                            "use it in a test function, not from a fixture of a narrower scope")


@pytest.fixture
def simgate_host(request: pytest.FixtureRequest):
    return request.config.stash[HOST]


@pytest.fixture
def simgate_result(request: pytest.FixtureRequest, simgate_case, simgate_host):
    """Run the case (all its episodes) and return its CaseResult; call ``.check()`` to assert."""

    ray = request.config.pluginmanager.get_plugin("simgate-ray")  # --simgate-ray: the episodes it still needs go there
    result = run_case(simgate_case, simgate_host, request.config.getoption("simgate_engine"), _cache_dir(request.config),
                      remote=getattr(ray, "compute", None))
    request.node.user_properties.append((PROPERTY, result.to_dict()))
    return Checked(result)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Allure attachments made in the call phase belong to the test, not to its fixture."""
    checked = getattr(item, "funcargs", {}).get("simgate_result")
    if isinstance(checked, Checked) and getattr(item.config.option, "allure_report_dir", None):
        allure.report_case(checked.result, item.config.stash[HOST])
    return (yield)


class Checked:
    """A CaseResult with the assertion a suite makes."""

    def __init__(self, result):
        self.result = result

    def __getattr__(self, name):
        return getattr(self.result, name)

    def check(self) -> None:
        if self.result.outcome == "PASS":
            return
        if not self.result.case.gate:  # a sensitivity point beyond the spec: shown, never blocking
            pytest.xfail(f"informational scenario (gate: false)\n{case_message(self.result)}")
        pytest.fail(case_message(self.result), pytrace=False)


@pytest.hookimpl
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    controller = Controller(config, config.stash.get(CASES, []), _reports_dir(config), _scenarios_dir(config))
    controller.study = config.stash.get(STUDY, None)
    config.pluginmanager.register(controller, "simgate-controller")
    controller.start()
