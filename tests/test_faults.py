"""Faults during a run, for real: a policy that hangs, sleeps, exits or kills its worker, a run
interrupted by SIGINT or SIGTERM, deselected cases, two runs sharing one reports folder. Each must
end in a named failure of its own case (or an incomplete run), never in PASS, a hang or a
traceback, and every other case must still report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PLUGIN = """
from simgate.plugin_manager import hookimpl
from simgate.policies.spec import PolicySpec

NAMES = ("pd", "sleeper", "spinner", "native_sleeper", "exiter", "raiser", "nan", "shape", "my-killer", "interrupter",
         "slow_start")


@hookimpl
def simgate_register_policies(registry):
    for name in NAMES:
        registry.add(name, PolicySpec(name=name, env="InvertedPendulum-v5", format="scripted",
                                      entry=f"controllers:{name.replace('-', '_')}", observation_size=4,
                                      action_size=1, manifest="myplugin.py"))
"""

CONTROLLERS = """
import os
import sys
import time

import numpy as np


class _PD:
    def act(self, obs):
        x, th, xd, thd = obs[0]
        return np.array([[np.clip(1.0 * x + 20 * th + 1.5 * xd + 3 * thd, -3, 3)]])


class _Fault(_PD):
    def __init__(self, fault):
        self.fault, self.calls = fault, 0

    def act(self, obs):
        self.calls += 1
        if self.calls >= 3:  # a few good steps first: then the fault strikes, every time
            self.fault()
        return super().act(obs)


def _spin():
    while True:
        pass


def pd():
    return _PD()


def _sleep():
    with open("sleeper.pid", "w") as handle:  # tells a test which process to signal
        handle.write(str(os.getpid()))
    time.sleep(10_000)


def sleeper():
    return _Fault(_sleep)


def spinner():
    return _Fault(_spin)


def native_sleeper():
    # hung inside native code, as an inference runtime stuck in a kernel: libc's sleep through
    # ctypes (which lets go of the GIL, as onnxruntime and torch do while they compute)
    import ctypes

    libc = ctypes.CDLL(None)
    return _Fault(lambda: libc.sleep(10_000))


def exiter():
    return _Fault(lambda: sys.exit(0))


def raiser():
    def fail():
        raise RuntimeError("bad weights")
    return _Fault(fail)


class _NaN(_PD):
    def act(self, obs):
        return np.full((obs.shape[0], 1), np.nan)


def nan():
    return _NaN()


class _Shape(_PD):
    def act(self, obs):
        return np.zeros((obs.shape[0], 3))


def shape():
    return _Shape()


def my_killer():
    return _Fault(lambda: os._exit(3))  # what a segfault in a native runtime looks like to xdist


def interrupter():
    def stop():
        raise KeyboardInterrupt
    return _Fault(stop)


def slow_start():
    time.sleep(10_000)  # hangs while loading: the case limit must end it
"""

SCENARIO = """
name: balance
env: InvertedPendulum-v5
episodes: 8
design: fixed  # one look: Ray plans every task before the items run (the path these faults test)
horizon: 0.5
policy_timeout: 2
case_timeout: 8
thresholds:
  min_success_rate: 0.5
  max_mean_torque: 250.0  # of a 300 N range: decidable in 8 episodes
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text('simgate_plugins = ["myplugin"]\n')
    (tmp_path / "myplugin.py").write_text(PLUGIN)
    (tmp_path / "controllers.py").write_text(CONTROLLERS)
    (tmp_path / "test_gate.py").write_text("def test_scenario(simgate_result):\n    simgate_result.check()\n")
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "balance.yaml").write_text(textwrap.dedent(SCENARIO))
    (tmp_path / "pytest.ini").write_text("[pytest]\nsimgate_candidates =\n    pd\n")
    return tmp_path


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["SIMGATE_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--simgate-cache", "none", *args]


def run(project: Path, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), cwd=project, env=_env(), capture_output=True, text=True, timeout=timeout)


def verdict(project: Path) -> dict:
    return json.loads((project / "reports" / "verdict.json").read_text())


def summary(project: Path) -> dict:
    return json.loads((project / "reports" / "summary.json").read_text())


def policies(*names) -> list[str]:
    return [arg for name in names for arg in ("--policy", name)]


def assert_clean(result: subprocess.CompletedProcess) -> None:
    out = result.stdout + result.stderr
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize("name, expected", [
    ("sleeper", "policy call took longer than the limit of 2 s"),
    ("spinner", "policy call took longer than the limit of 2 s"),
    ("native_sleeper", "policy call took longer than the limit of 2 s"),
    ("slow_start", "the case ran longer than its limit of 8 s"),
])
def test_a_hung_policy_fails_its_case_as_a_timeout_and_the_run_goes_on(project, workers, name, expected):
    result = run(project, "-n", workers, *policies("pd", name))
    assert result.returncode == 1, result.stdout[-3000:]
    assert_clean(result)
    cases = summary(project)["cases"]
    assert cases["balance-pd"]["outcome"] == "PASS"
    hung = cases[f"balance-{name}"]
    assert hung["outcome"] == "ERROR" and hung["status"] == "error" and "policy_error" in hung["failure_modes"]
    assert "timeout" in hung["error"] and expected in hung["error"]
    document = verdict(project)
    # the candidate's own policy hung: a failure of the candidate (exit 1), not of the evidence
    assert document["complete"] and not document["promote"] and document["decision"] == "FAIL"
    assert document["candidates"]["pd"]["promote"] and not document["candidates"][name]["promote"]


def test_a_baseline_that_hangs_leaves_the_candidate_unjudged_not_failed(project):
    """The candidate's own episodes pass; its baseline's policy call hangs: the comparison has no
    evidence, which is INVALID (exit 3), never the candidate's FAIL."""
    result = run(project, "-n", "0", "--policy", "pd", "--baseline", "sleeper")
    assert result.returncode == 3, result.stdout[-3000:]
    assert_clean(result)
    case = summary(project)["cases"]["balance-pd"]
    assert case["outcome"] == "ERROR" and "setup_error" in case["failure_modes"], case
    assert "policy call took longer than the limit of 2 s" in case["error"] and "baseline 'sleeper'" in case["error"]
    document = verdict(project)
    assert document["decision"] == "INVALID" and not document["promote"]


@pytest.mark.parametrize("name, words", [
    ("exiter", "sys.exit(0)"),
    ("raiser", "RuntimeError: bad weights"),
    ("nan", "non-finite action"),
    ("shape", "shape"),
])
def test_a_policy_that_misbehaves_fails_every_episode_it_touches_and_nothing_else(project, name, words):
    result = run(project, "-n", "0", *policies(name, "pd"))  # the faulty one first: it must not break the next
    assert result.returncode == 1
    assert_clean(result)
    cases = summary(project)["cases"]
    assert cases["balance-pd"]["outcome"] == "PASS"
    bad = cases[f"balance-{name}"]
    assert bad["outcome"] == "FAIL", bad  # never INCONCLUSIVE, never a vacuous torque PASS
    errors = [r for r in bad["requirements"] if r["kind"] == "policy_errors"]
    assert errors and errors[0]["outcome"] == "FAIL" and words in errors[0]["bound"]
    assert bad["failure_modes"].get("policy_error") == 8
    assert not verdict(project)["candidates"][name]["promote"]


def test_a_killed_worker_is_charged_to_its_own_case_and_policy(project):
    result = run(project, "-n", "2", *policies("pd", "my-killer"))
    assert result.returncode == 3  # INVALID: a crashed case is no evidence
    summary_cases = summary(project)["cases"]
    crashed = summary_cases["balance-my-killer"]
    assert crashed["outcome"] == "ERROR" and crashed["status"] == "crashed" and crashed["case"]["policy"] == "my-killer"
    assert summary_cases["balance-pd"]["outcome"] == "PASS"
    document = verdict(project)
    assert set(document["candidates"]) == {"pd", "my-killer"}  # no 'killer' made up from the case id
    assert not document["candidates"]["my-killer"]["promote"] and document["candidates"]["pd"]["promote"]
    assert not document["promote"] and document["decision"] == "INVALID"
    assert document["candidates"]["my-killer"]["outcome"] == "INVALID" and document["candidates"]["pd"]["outcome"] == "PASS"


def test_a_sigkilled_xdist_worker_loses_nothing_else(project):
    """SIGKILL from outside (the OOM killer) to the worker running a hung case."""
    cmd = _command("-n", "2", *policies("pd", "sleeper"))
    (project / "scenarios" / "balance.yaml").write_text(textwrap.dedent(SCENARIO).replace("policy_timeout: 2", "policy_timeout: 200")
                                                        .replace("case_timeout: 8", "case_timeout: 300"))
    proc = subprocess.Popen(cmd, cwd=project, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    os.kill(_wait_for_pid(project / "sleeper.pid"), signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 3, out[-3000:]
    cases = summary(project)["cases"]
    assert cases["balance-sleeper"]["status"] == "crashed" and cases["balance-pd"]["outcome"] == "PASS"
    assert not verdict(project)["promote"]


def _wait_for_pid(path: Path, timeout: float = 120) -> int:
    """The pid the sleeping policy wrote once it started to hang."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.2)
    raise AssertionError("the sleeping policy never started")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_is_incomplete_and_exits_non_zero(project, sig):
    (project / "scenarios" / "balance.yaml").write_text(textwrap.dedent(SCENARIO).replace("policy_timeout: 2", "policy_timeout: 200")
                                                        .replace("case_timeout: 8", "case_timeout: 300"))
    proc = subprocess.Popen(_command("-n", "0", *policies("pd", "sleeper")), cwd=project, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    _wait_for_pid(project / "sleeper.pid")  # pd has reported, the sleeper hangs
    os.killpg(proc.pid, sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, out[-3000:]  # INVALID, not pytest's interrupted 2 (INCONCLUSIVE's code)
    document = verdict(project)
    assert document["decision"] == "INVALID" and not document["promote"] and document["interrupted"]
    assert "balance-sleeper" in document["missing"]
    assert "promotion: INVALID: incomplete run" in out and "PASS (exit" not in out
    assert out.rstrip().splitlines()[-1].startswith("simgate: INVALID (exit 3): incomplete run")


def test_a_policy_raising_keyboard_interrupt_ends_the_run_as_interrupted(project):
    result = run(project, "-n", "0", *policies("pd", "interrupter"))
    assert result.returncode == 3
    document = verdict(project)
    assert not document["promote"] and document["decision"] == "INVALID"


def test_x_stops_early_and_the_rest_is_missing(project):
    result = run(project, "-n", "0", "-x", *policies("raiser", "pd"))
    assert result.returncode == 3
    document = verdict(project)
    assert document["decision"] == "INVALID" and document["missing"] == ["balance-pd"]
    assert "did not report (1): balance-pd" in result.stdout


@pytest.mark.parametrize("selection", [["-k", "pd"], ["--deselect", "test_gate.py::test_scenario[balance-raiser]"],
                                       ["test_gate.py::test_scenario[balance-pd]"]])
def test_a_partial_selection_never_promotes(project, selection):
    result = run(project, "-n", "0", *policies("pd", "raiser"), *selection)
    assert result.returncode == 3, result.stdout[-2000:]
    document = verdict(project)
    assert document["decision"] == "INVALID" and document["deselected"] == ["balance-raiser"]
    assert not document["promote"] and document["candidates"]["pd"]["promote"] is False
    assert "promotion: INVALID: incomplete run" in result.stdout and "not selected (1): balance-raiser" in result.stdout


def test_last_failed_is_a_partial_run(project):
    first = subprocess.run([sys.executable, "-m", "pytest", "--simgate-cache", "none", *policies("pd", "raiser")],
                           cwd=project, env=_env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 1
    again = subprocess.run([sys.executable, "-m", "pytest", "--simgate-cache", "none", "--lf", *policies("pd", "raiser")],
                           cwd=project, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 3
    assert verdict(project)["deselected"] == ["balance-pd"] and verdict(project)["decision"] == "INVALID"


def test_two_concurrent_runs_sharing_reports_lose_nothing(project):
    procs = [subprocess.Popen(_command("-n", "0", *policies(*names)), cwd=project, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for names in (("pd",), ("pd", "raiser"))]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 1], outs
    runs = sorted((project / "reports" / "runs").iterdir())
    assert len(runs) == 2
    documents = [json.loads((r / "verdict.json").read_text()) for r in runs]
    assert sorted(d["decision"] for d in documents) == ["FAIL", "PASS"]
    for r in runs:
        json.loads((r / "summary.json").read_text())  # whole, valid JSON
    latest = json.loads((project / "reports" / "verdict.json").read_text())
    assert latest["run"] in {r.name for r in runs} and latest in documents
    assert not list((project / "reports").glob(".*.tmp"))


def test_a_run_killed_outright_leaves_running_not_an_old_allowed(project):
    assert run(project, "-n", "0", *policies("pd")).returncode == 0
    assert verdict(project)["decision"] == "PASS"
    (project / "scenarios" / "balance.yaml").write_text(textwrap.dedent(SCENARIO).replace("policy_timeout: 2", "policy_timeout: 200")
                                                        .replace("case_timeout: 8", "case_timeout: 300"))
    proc = subprocess.Popen(_command("-n", "0", *policies("pd", "sleeper")), cwd=project, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for_pid(project / "sleeper.pid")
    os.killpg(proc.pid, signal.SIGKILL)  # no handler runs: nothing is written at the end
    proc.wait()
    document = verdict(project)
    assert document["decision"] == "RUNNING" and document["promote"] is False


@pytest.mark.parametrize("option, words", [
    ("--simgate-reports", "cannot be written"),
    ("--simgate-cache", "is a file, not a folder"),
])
def test_an_output_folder_that_is_a_file_stops_the_run_before_any_episode(project, option, words):
    (project / "blocker").write_text("not a folder")
    args = [option, "blocker"] if option == "--simgate-reports" else []
    if option == "--simgate-cache":
        (project / "reports").mkdir()
        (project / "reports" / "cache").write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", *args,
                             *policies("pd")], cwd=project, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert_clean(result)
    assert "ERROR:" in result.stderr and words in result.stderr and option in result.stderr


def test_a_k_expression_with_equals_is_a_clean_usage_error_under_xdist(project):
    result = run(project, "-n", "2", "-k", "policy=pd", *policies("pd"))
    assert result.returncode == 4
    assert_clean(result)
    assert "Wrong expression passed to '-k'" in result.stderr and "does not accept '='" in result.stderr


def test_a_ray_address_where_nothing_listens_is_refused_at_configure_time(project):
    """ray.init retries such an address forever, deaf to Ctrl-C: the address is tried first, with a time limit."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--simgate-ray", "127.0.0.1:1",
                             *policies("pd")], cwd=project, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert_clean(result)
    assert "--simgate-ray 127.0.0.1:1: cannot reach the Ray cluster at 127.0.0.1:1" in result.stderr
    assert " passed" not in result.stdout
    assert verdict(project)["decision"] == "ERROR"


ALLOWED = '{"promote": true, "decision": "ALLOWED", "run": "old"}\n'


def _reports_refusal(project: Path) -> subprocess.CompletedProcess:
    result = run(project, "-n", "0", *policies("pd"))
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert_clean(result)
    assert " passed" not in result.stdout and "ALLOWED" not in result.stdout + result.stderr
    return result


def test_a_latest_that_is_a_real_folder_is_refused_before_any_episode(project):
    """``latest`` is the link to the newest run; a real folder there would keep an old ALLOWED in place."""
    (project / "reports" / "latest").mkdir(parents=True)
    (project / "reports" / "latest" / "verdict.json").write_text(ALLOWED)
    result = _reports_refusal(project)
    assert f"{project / 'reports' / 'latest'} is a real folder" in result.stderr and "rm -r" in result.stderr
    assert verdict(project)["decision"] == "ERROR"


def test_a_verdict_json_that_is_a_folder_is_refused_before_any_episode(project):
    (project / "reports" / "verdict.json").mkdir(parents=True)
    result = _reports_refusal(project)
    assert f"{project / 'reports' / 'verdict.json'} is a folder, not a file" in result.stderr
    assert "could not replace it" in result.stderr and "--simgate-reports" in result.stderr


def test_an_immutable_verdict_json_is_refused_before_any_episode(project):
    path = project / "reports" / "verdict.json"
    path.parent.mkdir()
    path.write_text(ALLOWED)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (not root, or the filesystem has no such flag)")
    try:
        result = _reports_refusal(project)
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    assert f"{path} is immutable (chattr +i)" in result.stderr and f"chattr -i {path}" in result.stderr


def test_a_latest_folder_made_during_the_run_is_an_error_not_a_silent_stale_copy(tmp_path):
    from simgate.reporting.store import ReportsError, RunStore

    (tmp_path / "latest").mkdir()
    with pytest.raises(ReportsError, match="is a real folder"):
        RunStore(tmp_path).finish({"cases": {}}, {"promote": False, "decision": "BLOCKED"})
    assert json.loads((tmp_path / "verdict.json").read_text())["decision"] == "BLOCKED"


def test_a_policy_package_linking_out_of_its_folder_fails_its_case_instead_of_hashing_the_target(project):
    """A scripted policy's package is hashed whole for the episode cache: a link in it to a folder
    elsewhere (the testers': /usr/share, 50,086 files per case) is refused, never followed."""
    (project / "ctl").mkdir()
    (project / "ctl" / "__init__.py").write_text("from controllers import pd  # noqa: F401\n")
    (project / "ctl" / "share").symlink_to(Path(__file__).resolve().parents[1] / "envs", target_is_directory=True)
    (project / "linkedplug.py").write_text(textwrap.dedent("""
        from simgate.plugin_manager import hookimpl
        from simgate.policies.spec import PolicySpec


        @hookimpl
        def simgate_register_policies(registry):
            registry.add("linked", PolicySpec(name="linked", env="InvertedPendulum-v5", format="scripted", entry="ctl:pd",
                                              observation_size=4, action_size=1, manifest="linkedplug.py"))
        """))
    (project / "conftest.py").write_text('simgate_plugins = ["myplugin", "linkedplug"]\n')
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", *policies("pd", "linked")],
                            cwd=project, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]  # INVALID: no evidence for linked
    assert_clean(result)
    cases = summary(project)["cases"]
    assert cases["balance-pd"]["outcome"] == "PASS"
    linked = cases["balance-linked"]
    assert linked["outcome"] == "ERROR" and "ctl/share is a link to" in linked["error"], linked
    assert "remove the link" in linked["error"] and not verdict(project)["promote"]


INTERRUPT_WHILE_COLLECTING = """
def pytest_collectstart(collector):
    if collector.name.startswith("test_"):  # Ctrl-C while pytest collects the gate's module
        raise KeyboardInterrupt
"""


def test_ctrl_c_while_collecting_the_gate_is_invalid_not_pytest_s_interrupted(project):
    """Nothing was collected yet, so no case reported: the run is INVALID (3), every case missing;
    pytest's own 2 would read as INCONCLUSIVE."""
    with open(project / "conftest.py", "a") as conftest:
        conftest.write(INTERRUPT_WHILE_COLLECTING)
    done = run(project)
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-2000:]
    document = verdict(project)
    assert document["decision"] == "INVALID" and document["interrupted"] and "balance-pd" in document["missing"]
    assert document["deselected"] == []
    assert done.stdout.rstrip().splitlines()[-1].startswith("simgate: INVALID (exit 3)")


#: a project plugin that is interrupted while simgate imports it (in its pytest_configure): by
#: Ctrl-C, or by SIGTERM as a CI system cancels a job
INTERRUPTED_PLUGIN = {
    "ctrl_c": "raise KeyboardInterrupt\n",
    "sigterm": "import os, signal, time\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(30)\n",
}


@pytest.mark.parametrize("how", sorted(INTERRUPTED_PLUGIN))
def test_an_interrupt_while_the_scenarios_load_is_invalid_and_replaces_an_earlier_verdict(project, how):
    """Before any case is collected, an earlier run's ALLOWED must not stay the last word, and
    pytest's own 2 (or a death by SIGTERM) would not say INVALID."""
    (project / "reports").mkdir()
    (project / "reports" / "verdict.json").write_text(json.dumps({"promote": True, "decision": "ALLOWED"}))
    (project / "stopper.py").write_text(INTERRUPTED_PLUGIN[how])
    (project / "conftest.py").write_text('simgate_plugins = ["myplugin", "stopper"]\n')
    done = run(project, "test_gate.py", timeout=120)
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-2000:]
    assert "simgate: INVALID (exit 3): interrupted" in done.stdout + done.stderr
    document = verdict(project)
    assert document["decision"] == "INVALID" and document["promote"] is False, document
    assert "before any case ran" in document["error"]
    # a session of other tests is interrupted as pytest says, and touches no verdict
    (project / "test_other.py").write_text("def test_other():\n    pass\n")
    (project / "reports" / "verdict.json").write_text(json.dumps({"promote": True, "decision": "ALLOWED"}))
    done = run(project, "test_other.py", timeout=120)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-2000:]
    assert verdict(project)["decision"] == "ALLOWED"


def test_ctrl_c_while_collecting_other_tests_stays_pytest_s_and_writes_no_verdict(project):
    """A session of other tests in a project with scenarios (simgate's own tests, say) is no gate run."""
    (project / "test_gate.py").write_text("def test_other():\n    pass\n")
    with open(project / "conftest.py", "a") as conftest:
        conftest.write(INTERRUPT_WHILE_COLLECTING)
    done = run(project)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-2000:]
    assert not (project / "reports" / "verdict.json").exists()
