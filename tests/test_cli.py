"""`python -m simgate report|replay`: both commands live in simgate.cli and run as printed."""

import json
import subprocess
import sys

from tests.test_end_to_end import REPO, SMALL


def simgate(*args):
    return subprocess.run([sys.executable, "-m", "simgate", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_replay_runs_from_the_cli_package(tmp_path):
    run = simgate("replay", "flat-balancebot-lqr", "0", "--scenarios", str(SMALL), "--out", str(tmp_path / "out"),
                  "--cache", str(tmp_path / "cache"))
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["length"] > 0 and (tmp_path / "out" / "flat-balancebot-lqr-episode0.npz").exists()


def test_an_unknown_case_is_an_error_without_traceback(tmp_path):
    run = simgate("replay", "nonexistent-balancebot-lqr", "0", "--scenarios", str(SMALL))
    assert run.returncode == 4 and run.stderr.startswith("ERROR: no case 'nonexistent-balancebot-lqr'")
    assert "Traceback" not in run.stderr


def test_report_without_results_says_what_to_run(tmp_path):
    run = simgate("--rootdir", str(tmp_path), "report")
    assert run.returncode != 0 and "no Allure results in" in run.stderr


def test_the_commands_are_in_simgate_cli():
    from simgate.cli import main, replay, report

    assert callable(main) and callable(replay.main) and callable(report.main)
