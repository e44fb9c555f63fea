"""The benchmark stays runnable; its figures are read by people, never asserted on."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_throughput_benchmark_runs_and_prints_its_ratios():
    run = subprocess.run([sys.executable, "benchmarks/throughput.py", "--quick"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    last = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"ratio_vs_physics_limit=\d+\.\d+ ratio_vs_plain_loop=\d+\.\d+", last), last
    assert "plain gymnasium" in run.stdout and "simgate reference" in run.stdout
