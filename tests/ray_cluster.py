"""A two-node Ray cluster on this machine, for tests/test_ray.py and benchmarks/scale.py.

Each node is one ``ray start --block`` in its own session (process group == its pid) with
PR_SET_PDEATHSIG, so it goes if the process that started it dies. Stopped by SIGTERM to that pid,
then SIGKILL of whatever its group still holds after a bounded wait. Never ``ray stop`` or a kill
by name: other Ray processes on the machine are not ours. Every wait has a time limit.

Auth is off (``RAY_AUTH_MODE=disabled``: a local ``ray.init()`` elsewhere on the machine leaves a
token file that would otherwise switch it on), every port is a free one (two nodes on one host
collide on Ray's fixed defaults), and the health checks are tuned so a lost node is seen in about
a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the `ray` command of this interpreter's environment
RAY_CLI = str(Path(sys.executable).with_name("ray"))


def ray_env(**extra) -> dict:
    """This process's environment for a Ray process: auth and usage stats off, no RAY_ADDRESS
    (ray.init() would go there), no pytest variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "RAY_ADDRESS"))}
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def pdeathsig() -> None:
    """In a child between fork and exec: SIGTERM when the parent dies."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def group_pids(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True, text=True,
                         timeout=30).stdout
    return [int(pid) for pid, stat in (line.split() for line in out.splitlines()) if not stat.startswith("Z")]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def start_node(name: str, args: list, env: dict, logdir: Path, timeout: float = 90) -> subprocess.Popen:
    log = logdir / f"{name}.out"
    with open(log, "w") as handle:
        p = subprocess.Popen([RAY_CLI, "start", "--block", *args], stdout=handle, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True, preexec_fn=pdeathsig)
    deadline = time.time() + timeout
    while "Ray runtime started" not in log.read_text():
        if p.poll() is not None or time.time() > deadline:
            stop_node(p)
            raise RuntimeError(f"Ray node {name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return p


def stop_node(p: subprocess.Popen, grace: float = 15) -> None:
    try:
        p.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.time() + grace
    while (p.poll() is None or group_pids(p.pid)) and time.time() < deadline:
        time.sleep(0.1)
    kill_group(p.pid)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass


def kill_group(pgid: int) -> list[int]:
    """SIGKILL every live process of the group; the pids killed."""
    killed = []
    for pid in group_pids(pgid):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed


@contextlib.contextmanager
def two_nodes(cpus: int = 1):
    """``with two_nodes() as cluster:`` a head and a second node, ``cpus`` CPUs each; yields
    {"address", "head", "node2", "env"} (env: what a driver process needs). On exit both are
    stopped and RuntimeError is raised if any of their processes is left."""
    work = Path(tempfile.mkdtemp(prefix="r2n.", dir="/tmp"))  # short: unix socket paths < 108 bytes
    env = ray_env(RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="3",
                  RAY_health_check_timeout_ms="500", AUTOSCALER_METRIC_PORT=str(free_port()),
                  DASHBOARD_METRIC_PORT=str(free_port()))
    port, memory = free_port(), f"--object-store-memory={200 * 2**20}"
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(start_node("head", ["--head", f"--port={port}", f"--num-cpus={cpus}", f"--temp-dir={work}/ray",
                                         "--include-dashboard=false", "--disable-usage-stats", memory,
                                         f"--ray-client-server-port={free_port()}",
                                         f"--dashboard-agent-listen-port={free_port()}"], env, work))
        nodes.append(start_node("node2", [f"--address=127.0.0.1:{port}", f"--num-cpus={cpus}", "--disable-usage-stats",
                                          memory, f"--dashboard-agent-listen-port={free_port()}"], env, work))
        yield {"address": f"127.0.0.1:{port}", "head": nodes[0], "node2": nodes[1], "env": env}
    finally:
        for p in reversed(nodes):
            stop_node(p)
        left = [pid for p in nodes for pid in group_pids(p.pid)]
        shutil.rmtree(work, ignore_errors=True)
        if left:
            raise RuntimeError(f"Ray processes left over: {left}")
