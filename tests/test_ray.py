"""--simgate-ray: the episodes on Ray, the verdicts from the driver's episode cache, the same
summary as ``-n 0``; a Ray worker SIGKILLed in the middle of a task changes nothing."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from tests import ray_cluster  # noqa: E402
from tests.test_end_to_end import ALL_FORMATS, REPO, SMALL, results_only, summary  # noqa: E402

# two cases per scenario file at most: small enough for a shared 2-core machine
FILES = ("flat.yaml", "rough.yaml")


def _env(**extra):
    return ray_cluster.ray_env(**extra)


def _cmd(reports: Path, *args):
    return [sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider", "--scenarios", str(SMALL),
            "--simgate-reports", str(reports), *ALL_FORMATS, *args]


def _run(reports: Path, *args, **env):
    return subprocess.run(_cmd(reports, *args), cwd=REPO, env=_env(**env), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    run = _run(out, "-n", "0")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return summary(out)


def _all_from_ray(document: dict, out: str = "") -> None:
    """Every episode a case used was in the cache: Ray computed them all (none locally). A case
    judged at looks (a sequential or the default group design) asks Ray for each look's episodes
    as it reaches it, and counts them as run by this run: for it, no task fell back to the driver."""
    for cid, case in document["cases"].items():
        if case["case"].get("sequential"):
            assert f"(run locally): {cid}:" not in out, out[-3000:]
            continue
        assert case["episodes_run"] == 0, (cid, case["episodes_run"], case["episodes_cached"], out[-3000:])
        assert case["episodes_cached"] > 0, cid


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def test_ray_local_gives_the_serial_summary_even_when_a_worker_is_killed(serial, tmp_path):
    """``--simgate-ray local`` on two CPUs, and the Ray worker process that runs a task (found
    among the processes this run started, by its title ``ray::run_task``) SIGKILLed mid-task:
    Ray runs the task again, every episode still comes from Ray (the TorchScript policy
    included: same lanes, same bits), and the case entries equal the serial run's."""
    proc = subprocess.Popen(_cmd(tmp_path, "--simgate-ray", "local", "-v"), cwd=REPO, env=_env(SIMGATE_RAY_CPUS="2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=ray_cluster.pdeathsig)
    killed = None
    try:
        deadline = time.time() + 300
        while killed is None and proc.poll() is None and time.time() < deadline:
            for pid in _descendants(proc.pid):
                if ray_cluster.cmdline(pid).startswith("ray::run_task"):
                    time.sleep(0.3)  # well inside the task
                    if ray_cluster.cmdline(pid).startswith("ray::run_task"):
                        os.kill(pid, signal.SIGKILL)
                        killed = pid
                    break
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:  # only what this test started: its own process group
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert killed is not None, "no Ray worker was seen running a task"
    assert proc.returncode == 0, stdout[-3000:] + stderr[-2000:]
    assert "tasks" in stdout and "episodes computed on Ray" in stdout
    assert "simgate ray: tasks left" in stdout and "node(s)" in stdout  # the progress line (-v)
    ray_summary = summary(tmp_path)
    _all_from_ray(ray_summary, stdout + stderr)  # the killed task was retried on Ray, not computed locally
    assert results_only(ray_summary) == results_only(serial)


def test_ray_refuses_xdist(tmp_path):
    run = _run(tmp_path, "--simgate-ray", "local", "-n", "2")
    assert run.returncode != 0
    assert "--simgate-ray and xdist" in run.stdout + run.stderr


def test_ray_refuses_no_cache(tmp_path):
    run = _run(tmp_path, "--simgate-ray", "local", "--simgate-cache", "none")
    assert run.returncode != 0
    assert "cannot run with --simgate-cache none" in run.stdout + run.stderr


# -- a two-node cluster on this machine (tests/ray_cluster.py: process groups, stopped by pid) ------
@pytest.fixture
def two_nodes():
    with ray_cluster.two_nodes() as cluster:
        yield cluster


def test_a_lost_node_changes_nothing(serial, tmp_path, two_nodes):
    """A head and a second node, one CPU each; once the second node runs a task, every process
    of that node is SIGKILLed: its tasks run again on the head, all from Ray, the same summary.
    Every wait is bounded; the fixture checks that no process of either node is left."""
    node2 = two_nodes["node2"]
    proc = subprocess.Popen(_cmd(tmp_path, "--simgate-ray", two_nodes["address"]), cwd=REPO, env=two_nodes["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=ray_cluster.pdeathsig)
    killed = []
    try:
        deadline = time.time() + 300
        while not killed and proc.poll() is None and time.time() < deadline:
            if any(ray_cluster.cmdline(pid).startswith("ray::run_task") for pid in ray_cluster.group_pids(node2.pid)):
                time.sleep(0.3)
                killed = ray_cluster.kill_group(node2.pid)
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert killed, "the second node never ran a task"
    assert proc.returncode == 0, stdout[-3000:] + stderr[-2000:]
    ray_summary = summary(tmp_path)
    _all_from_ray(ray_summary, stdout + stderr)
    assert results_only(ray_summary) == results_only(serial)


# -- time limits on the workers, and no Ray without the option ----------------------------------------
@pytest.fixture
def fault_project(tmp_path: Path) -> Path:
    """tests/test_faults.py's project: a PD policy and policies that hang (in a call, in a busy
    loop, while loading), with policy_timeout 2 s and case_timeout 30 s (test_faults' 8 s is
    wall-clock time a niced Ray worker can spend waiting for a CPU on a loaded machine before its
    policy is even called)."""
    import textwrap

    from tests import test_faults as faults

    (tmp_path / "conftest.py").write_text('simgate_plugins = ["myplugin"]\n')
    (tmp_path / "myplugin.py").write_text(faults.PLUGIN)
    (tmp_path / "controllers.py").write_text(faults.CONTROLLERS)
    (tmp_path / "test_gate.py").write_text("def test_scenario(simgate_result):\n    simgate_result.check()\n")
    (tmp_path / "scenarios").mkdir()
    scenario = textwrap.dedent(faults.SCENARIO)
    assert "case_timeout: 8\n" in scenario
    (tmp_path / "scenarios" / "balance.yaml").write_text(scenario.replace("case_timeout: 8\n", "case_timeout: 30\n"))
    (tmp_path / "pytest.ini").write_text("[pytest]\nsimgate_candidates =\n    pd\n")
    return tmp_path


def _project_run(project: Path, *args, timeout: float = 300, **env) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--simgate-reports", str(project / "out"), *args]
    return subprocess.run(cmd, cwd=project, env=_env(SIMGATE_DISABLE_PLUGIN_AUTOLOAD="1", **env), capture_output=True,
                          text=True, timeout=timeout)


def test_a_policy_that_hangs_on_a_worker_fails_its_case_as_a_timeout(fault_project):
    """A policy that hangs in a Ray task (sleeping, spinning, stuck in native code) is stopped by the worker's watchdog
    at policy_timeout, not retried; one that hangs while loading is stopped at case_timeout while
    the driver plans. Each case then ends as policy_error (timeout), with the message a -n 0 run
    gives, and the run goes on: the PD policy passes."""
    names = ("sleeper", "spinner", "native_sleeper", "slow_start")
    run = _project_run(fault_project, "--simgate-ray", "local", "-v",
                       *[arg for name in ("pd", *names) for arg in ("--policy", name)], SIMGATE_RAY_CPUS="2")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
    cases = summary(fault_project / "out")["cases"]
    # (its episodes normally come from Ray; under heavy load a task may outlive the scenario's
    # 30 s case_timeout and be recomputed on the driver, which is the limit working, not a fault)
    assert cases["balance-pd"]["outcome"] == "PASS", cases["balance-pd"]
    expected = {"sleeper": "a policy call took longer than the limit of 2 s",
                "spinner": "a policy call took longer than the limit of 2 s",
                "native_sleeper": "a policy call took longer than the limit of 2 s",  # hung in C, GIL released
                "slow_start": "the case ran longer than its limit of 30 s"}
    for name, words in expected.items():
        hung = cases[f"balance-{name}"]
        assert hung["outcome"] == "ERROR" and "policy_error" in hung["failure_modes"], hung
        assert hung["error"].startswith("policy_error (timeout)") and words in hung["error"], hung["error"]
        # stopped on Ray (or while the driver planned it), not by the driver's backstop
        assert f"(run locally): balance-{name}: {words}" in out and "no task finished" not in out, out[-3000:]


def test_without_the_option_nothing_imports_ray(fault_project):
    """Ray installed, a run without --simgate-ray: no module of Ray is ever imported."""
    script = ("import sys, pytest; rc = pytest.main(['-p', 'no:cacheprovider', '--simgate-reports', 'out', "
              "'--simgate-cache', 'none', '-n', '0', '--policy', 'pd']); "
              "print('RAY-IMPORTED', sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))[:3]); "
              "sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", script], cwd=fault_project, capture_output=True, text=True,
                         timeout=300, env=_env(SIMGATE_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout and "RAY-IMPORTED []" in run.stdout, run.stdout[-3000:]


# -- what an item asks for during its case: a search's rows, a sequential case's batches, repeats ----
def _project_scenarios(tmp_path: Path) -> Path:
    from tests.test_search import SCENARIO

    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "tiny_search.yaml").write_text(SCENARIO)
    sequential = (REPO / "tests" / "data" / "sequential" / "flat_sequential.yaml").read_text()
    (folder / "flat_sequential.yaml").write_text(sequential + "  deterministic: true\n")  # and its repeats
    return folder


def test_search_rows_sequential_batches_and_repeats_are_computed_on_ray(tmp_path):
    """A search case (each level depends on the last) and a sequential case (each batch on the
    outcomes so far) ask for their episodes while their items run: those go to Ray too, in the
    lanes the local engine would use, so the case entries equal -n 0's and nothing was computed
    on the driver (ray.json counts at least every episode the serial run computed, plus the
    determinism repeats, and lists no task left to the driver)."""
    scenarios = _project_scenarios(tmp_path)
    args = ("--scenarios", str(scenarios), "--policy", "balancebot-lqr")

    def run(reports, *extra, **env):
        cmd = [sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider", "--simgate-reports", str(reports),
               *args, *extra]
        return subprocess.run(cmd, cwd=REPO, env=_env(**env), capture_output=True, text=True, timeout=900)

    serial_run = run(tmp_path / "serial", "-n", "0")
    ray_run = run(tmp_path / "ray", "--simgate-ray", "local", SIMGATE_RAY_CPUS="2")
    for done in (serial_run, ray_run):  # the tiny search fails its envelope: exit 1, and no crash
        assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stdout[-3000:] + done.stderr[-2000:]
    serial_doc, ray_doc = summary(tmp_path / "serial"), summary(tmp_path / "ray")
    assert results_only(ray_doc) == results_only(serial_doc)
    search = ray_doc["cases"]["tiny_search-balancebot-lqr"]["search"]
    assert search["episodes"]["total"] > 20
    stats = json.loads((tmp_path / "ray" / "ray.json").read_text())
    assert stats["not_on_ray"] == [], stats
    computed = sum(c["episodes_run"] for c in serial_doc["cases"].values())
    repeats = sum(min(c["case"]["determinism_episodes"], c["episodes"]) for c in serial_doc["cases"].values()
                  if c["case"]["thresholds"].get("deterministic"))
    assert repeats > 0 and stats["episodes"] == computed + repeats, (stats, computed, repeats)
    assert stats["simulated_s"]["balancebot"] > 0
    worker = stats["worker_s"]  # where the workers' time went: MuJoCo and the policy are parts of the engine's
    assert 0 < worker["physics"] + worker["policy"] <= worker["engine"], worker


def test_a_killed_driver_resumes_where_it_stopped(serial, tmp_path):
    """Chunks are stored as they finish, by a collector thread, whatever the items are doing: a
    driver SIGKILLed mid-run (with the Ray runtime it started) leaves them in the cache, and the
    next run submits only the rest and gives the serial summary."""
    cache = tmp_path / "cache"
    first = subprocess.Popen(_cmd(tmp_path / "first", "--simgate-ray", "local", "--simgate-cache", str(cache)),
                             cwd=REPO, env=_env(SIMGATE_RAY_CPUS="2"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=ray_cluster.pdeathsig)
    stored = 0
    try:
        deadline = time.time() + 300
        while first.poll() is None and time.time() < deadline:
            stored = sum(1 for _ in cache.rglob("*.npz")) if cache.exists() else 0
            if stored >= 40:
                break
            time.sleep(0.1)
    finally:
        for pid in [first.pid, *_descendants(first.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        first.wait()
    assert stored >= 40, "the first run stored nothing before it was killed"
    total = sum(c["episodes_run"] for c in serial["cases"].values())
    again = _run(tmp_path / "again", "--simgate-ray", "local", "--simgate-cache", str(cache), SIMGATE_RAY_CPUS="2")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    submitted = int(again.stdout.split("simgate ray: ", 1)[1].split(" episodes of", 1)[0])
    assert submitted <= total - 15, (submitted, total, stored)  # whole stored lanes (15 episodes) not asked for again
    assert results_only(summary(tmp_path / "again")) == results_only(serial)


def test_a_yaml_robot_and_its_contract_give_the_serial_results_on_ray(tmp_path):
    """A robot described by YAML, driven through its policy's contract (whose state lives in the
    simulation): its episodes on Ray workers, which rebuild the robot from its file, equal -n 0's,
    the baseline (another network under the same contract) included."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "walk.yaml").write_text(textwrap.dedent("""\
        name: walk
        env: quadruped-mjcf
        episodes: 12
        horizon: 1.5
        seed: 5
        perturbations:
          - kind: apply_pushes
            params: {body: trunk, force: [5, 15], interval: [0.3, 0.6], direction: x}
        thresholds:
          min_success_rate: 0.5
          deterministic: true
        """))
    args = ("--scenarios", str(folder), "--policy", "quadruped-nominal-contract", "--baseline", "quadruped-robust-contract")

    def run(reports, *extra, **env):
        cmd = [sys.executable, "-m", "pytest", "suites/", "-p", "no:cacheprovider", "--simgate-reports", str(reports),
               *args, *extra]
        return subprocess.run(cmd, cwd=REPO, env=_env(**env), capture_output=True, text=True, timeout=900)

    serial_run = run(tmp_path / "serial", "-n", "0")
    ray_run = run(tmp_path / "ray", "--simgate-ray", "local", SIMGATE_RAY_CPUS="2")
    for done in (serial_run, ray_run):  # 1.5 s is too short to walk the 0.5 m success asks: FAIL, no crash
        assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stdout[-3000:] + done.stderr[-2000:]
    serial_doc, ray_doc = summary(tmp_path / "serial"), summary(tmp_path / "ray")
    assert results_only(ray_doc) == results_only(serial_doc)
    _all_from_ray(ray_doc, ray_run.stdout + ray_run.stderr)
    (case,) = ray_doc["cases"].values()
    assert case["case"]["env"] == "quadruped-mjcf" and case["case"]["baseline"] == "quadruped-robust-contract"
