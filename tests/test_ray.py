"""--simgate-ray: the episodes on Ray, the verdicts from the driver's episode cache, the same
summary as ``-n 0``; a Ray worker SIGKILLed in the middle of a chunk changes nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from tests.test_end_to_end import ALL_FORMATS, REPO, SMALL, results_only, summary  # noqa: E402

# two cases per scenario file at most: small enough for a shared 2-core machine
FILES = ("flat.yaml", "rough.yaml")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "RAY_ADDRESS"))}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", **extra)
    return env


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


def _all_from_ray(document: dict) -> None:
    """Every episode a case used was in the cache: Ray computed them all (none locally)."""
    for cid, case in document["cases"].items():
        assert case["episodes_run"] == 0, (cid, case["episodes_run"], case["episodes_cached"])
        assert case["episodes_cached"] > 0, cid


def test_ray_local_gives_the_serial_summary(serial, tmp_path):
    run = _run(tmp_path, "--simgate-ray", "local", SIMGATE_RAY_CPUS="2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "chunks" in run.stdout and "episodes computed on Ray" in run.stdout
    ray_summary = summary(tmp_path)
    _all_from_ray(ray_summary)  # the torchscript policy included: same lanes, same bits
    assert results_only(ray_summary) == results_only(serial)


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


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_killed_worker_changes_nothing(serial, tmp_path):
    """SIGKILL the Ray worker process that runs a chunk (found among the processes this run
    started, by its title ``ray::run_chunk``): Ray runs the chunk again, every episode still comes
    from Ray, and the summary equals the serial run's."""
    proc = subprocess.Popen(_cmd(tmp_path, "--simgate-ray", "local"), cwd=REPO, env=_env(SIMGATE_RAY_CPUS="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    killed = None
    try:
        deadline = time.time() + 300
        while killed is None and proc.poll() is None and time.time() < deadline:
            for pid in _descendants(proc.pid):
                if _cmdline(pid).startswith("ray::run_chunk"):
                    time.sleep(0.3)  # well inside the chunk
                    if _cmdline(pid).startswith("ray::run_chunk"):
                        os.kill(pid, signal.SIGKILL)
                        killed = pid
                    break
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:  # only what this test started: its own process group
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert killed is not None, "no Ray worker was seen running a chunk"
    assert proc.returncode == 0, stdout[-3000:] + stderr[-2000:]
    ray_summary = summary(tmp_path)
    _all_from_ray(ray_summary)  # the killed chunk was retried on Ray, not computed locally
    assert results_only(ray_summary) == results_only(serial)


def test_ray_refuses_xdist(tmp_path):
    run = _run(tmp_path, "--simgate-ray", "local", "-n", "2")
    assert run.returncode != 0
    assert "--simgate-ray and xdist" in run.stdout + run.stderr


def test_ray_refuses_no_cache(tmp_path):
    run = _run(tmp_path, "--simgate-ray", "local", "--simgate-cache", "none")
    assert run.returncode != 0
    assert "cannot run with --simgate-cache none" in run.stdout + run.stderr


# -- a two-node cluster on this machine ------------------------------------------------------------
# Each node is one `ray start --block` in its own session (process group == its pid), with
# PR_SET_PDEATHSIG so it goes if this test process dies; stopped by SIGTERM to that pid, then
# SIGKILL of whatever its group still holds. Never `ray stop` or a kill by name: other Ray
# processes on the machine are not ours.
import ctypes  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402

RAY_CLI = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _pdeathsig():
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def _group_pids(pgid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return [int(pid) for pid, stat in (line.split() for line in out.splitlines()) if not stat.startswith("Z")]


def _start_node(name, args, env, logdir, timeout=90):
    log = logdir / f"{name}.out"
    with open(log, "w") as handle:
        p = subprocess.Popen([RAY_CLI, "start", "--block", *args], stdout=handle, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True, preexec_fn=_pdeathsig)
    deadline = time.time() + timeout
    while "Ray runtime started" not in log.read_text():
        if p.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return p


def _stop_node(p, grace=15):
    try:
        p.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.time() + grace
    while (p.poll() is None or _group_pids(p.pid)) and time.time() < deadline:
        time.sleep(0.1)
    for pid in _group_pids(p.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture
def two_nodes():
    work = Path(tempfile.mkdtemp(prefix="r2n.", dir="/tmp"))  # short: unix socket paths < 108 bytes
    env = _env(RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="3",
               RAY_health_check_timeout_ms="500", AUTOSCALER_METRIC_PORT=str(_free_port()),
               DASHBOARD_METRIC_PORT=str(_free_port()))
    port, memory = _free_port(), f"--object-store-memory={200 * 2**20}"
    nodes = []
    try:
        nodes.append(_start_node("head", ["--head", f"--port={port}", "--num-cpus=1", f"--temp-dir={work}/ray",
                                          "--include-dashboard=false", "--disable-usage-stats", memory,
                                          f"--ray-client-server-port={_free_port()}",
                                          f"--dashboard-agent-listen-port={_free_port()}"], env, work))
        nodes.append(_start_node("node2", [f"--address=127.0.0.1:{port}", "--num-cpus=1", "--disable-usage-stats",
                                           memory, f"--dashboard-agent-listen-port={_free_port()}"], env, work))
        yield {"address": f"127.0.0.1:{port}", "head": nodes[0], "node2": nodes[1], "env": env}
    finally:
        for p in reversed(nodes):
            _stop_node(p)
        left = [pid for p in nodes for pid in _group_pids(p.pid)]
        shutil.rmtree(work, ignore_errors=True)
        assert not left, f"Ray processes left over: {left}"


def test_a_lost_node_changes_nothing(serial, tmp_path, two_nodes):
    """A head and a second node, one CPU each; once the second node runs a chunk, every process
    of that node is SIGKILLed: its chunks run again on the head, all from Ray, the same summary."""
    node2 = two_nodes["node2"]
    proc = subprocess.Popen(_cmd(tmp_path, "--simgate-ray", two_nodes["address"]), cwd=REPO, env=two_nodes["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_pdeathsig)
    killed = []
    try:
        deadline = time.time() + 300
        while not killed and proc.poll() is None and time.time() < deadline:
            if any(_cmdline(pid).startswith("ray::run_chunk") for pid in _group_pids(node2.pid)):
                time.sleep(0.3)
                for pid in _group_pids(node2.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    except ProcessLookupError:
                        pass
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert killed, "the second node never ran a chunk"
    assert proc.returncode == 0, stdout[-3000:] + stderr[-2000:]
    ray_summary = summary(tmp_path)
    _all_from_ray(ray_summary)
    assert results_only(ray_summary) == results_only(serial)
