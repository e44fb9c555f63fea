"""simgate as its users get it: built into a wheel and an sdist, installed into a fresh venv
outside this repository next to a separate plugin package (tests/data/external_plugin: an MJCF
env and an ONNX policy registered through the ``simgate`` entry point), then ``pytest
scenarios/ -n 2`` from a folder that holds nothing but that package's scenarios.

Nothing is downloaded: both packages are built with this venv's setuptools (--no-isolation),
installed with --no-deps, and the fresh venv sees this venv's site-packages (numpy, MuJoCo,
pytest, ...) through a .pth file. That path line does not run the .pth files there, so the
editable simgate of this checkout stays invisible: the wheel's simgate is the one imported.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO / "tests" / "data" / "external_plugin"


def _run(*args, cwd, env=None):
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _build(source: Path, files: list[str], into: Path, dist: Path) -> None:
    """Build from a copy: the build's own folders (build/, *.egg-info) stay out of the checkout."""
    for name in files:
        (shutil.copytree if (source / name).is_dir() else shutil.copy)(source / name, into / name)
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, into, cwd=into)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with simgate's wheel and the external package's wheel, and nothing else of its own."""
    pytest.importorskip("build")
    root = tmp_path_factory.mktemp("external")
    dist = root / "dist"
    (root / "simgate-src").mkdir()
    _build(REPO, ["pyproject.toml", "README.md", "simgate"], root / "simgate-src", dist)
    (root / "plugin-src").mkdir()
    _build(EXTERNAL, ["pyproject.toml", "acme_pendulum"], root / "plugin-src", dist / "plugin")
    wheels = sorted(dist.glob("simgate-*.whl")) + sorted((dist / "plugin").glob("acme_pendulum-*.whl"))
    assert len(wheels) == 2 and sorted(dist.glob("simgate-*.tar.gz")), sorted(dist.rglob("*"))
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", *wheels,
         cwd=root)
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root).stdout.strip()
    # after the install, so pip never sees this checkout's editable simgate as installed there
    Path(purelib, "dev-site-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_the_wheel_and_an_entry_point_plugin_gate_a_foreign_folder(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SIMGATE_", "PYTEST_"))}
    where = _run(installed, "-c", "import simgate, acme_pendulum; print(simgate.__file__)", cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(installed.parents[1]), where.stdout  # the wheel's copy
    shutil.copytree(EXTERNAL / "scenarios", tmp_path / "scenarios")  # the folder holds nothing else
    run = subprocess.run([str(installed), "-m", "pytest", "scenarios/", "-n", "2", "-p", "no:cacheprovider"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout and "promotion: PASS" in run.stdout
    verdict = json.loads((tmp_path / "reports" / "verdict.json").read_text())
    assert verdict["decision"] == "PASS" and verdict["complete"] and verdict["candidates"]["acme-pendulum-lqr"]["promote"]
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert sorted(summary["cases"]) == ["upright-strength=0.6-acme-pendulum-lqr", "upright-strength=1-acme-pendulum-lqr",
                                        "upright_yaml-strength=0.6-acme-pendulum-lqr-yaml",
                                        "upright_yaml-strength=1-acme-pendulum-lqr-yaml"]
    # the YAML robot, no Python (its episodes equal the Python env's: tests/test_robots.py)
    assert {c["outcome"] for c in summary["cases"].values()} == {"PASS"}


def test_readme_shows_this_package_as_it_is():
    """README's "Writing a plugin" example is the package this test installs, file for file."""
    import re

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Writing a plugin"):readme.index("## Benchmarks")]
    shown = dict(re.findall(r"^`([^`\n]+)`:\n\n```\w+\n(.*?)\n```", section, flags=re.S | re.M))
    assert sorted(shown) == ["acme_pendulum/env.py", "acme_pendulum/plugin.py",
                             "acme_pendulum/policies/lqr/manifest.yaml", "acme_pendulum/policies/lqr_contract/manifest.yaml",
                             "acme_pendulum/robots/pendulum/robot.yaml", "pyproject.toml", "scenarios/upright.yaml"]
    for name, text in shown.items():
        assert text == (EXTERNAL / name).read_text().rstrip(), name
