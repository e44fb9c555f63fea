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
