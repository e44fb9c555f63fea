"""Turn Allure results into the HTML report with the real Allure generator, keeping history.

    python -m simgate report [--results reports/allure-results] [--out reports/allure-report]

Uses Allure 2 (``allure-commandline`` from npm, run with Java 17), which reads simgate's
``categories.json`` and ``environment.properties`` from the results folder. It is installed once
into ``reports/.allure`` (``npm install allure-commandline``, about 33 MB) if no ``allure`` is
given. History: the previous report's ``history/`` is copied into the results before each
generation, so trends show across runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from simgate.reporting.allure import link_cases

NPM_PACKAGE = "allure-commandline@2"


def allure_command(tools: Path) -> list[str]:
    """The Allure 2 command line, installing it into ``tools`` with npm if it is not there yet."""
    local = tools / "node_modules" / ".bin" / "allure"
    if local.exists():
        return [str(local)]
    found = shutil.which("allure")
    if found:
        return [found]
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("simgate report needs Node.js's npm to install the Allure generator "
                         f"({NPM_PACKAGE}); install Node.js, or put an 'allure' command on PATH")
    if shutil.which("java") is None:
        raise SystemExit("the Allure 2 generator runs on Java: install a JRE 8+ (Debian: apt-get install -y default-jre)")
    tools.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(tools), "--no-audit", "--no-fund", NPM_PACKAGE], check=True)
    return [str(local)]


def generate(results: Path, out: Path, tools: Path) -> Path:
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise SystemExit(f"no Allure results in {results}: run pytest suites/ --alluredir {results} first")
    history = out / "history"
    if history.is_dir():  # the trend of the previous reports
        shutil.copytree(history, results / "history", dirs_exist_ok=True)

    # the generated page otherwise reports analytics each time it is opened
    env = {**os.environ, "ALLURE_NO_ANALYTICS": "true"}
    subprocess.run([*allure_command(tools), "generate", str(results), "-o", str(out), "--clean"], check=True, env=env)

    link_cases(out)  # each candidate's page links the cases that decide it
    return out / "index.html"


def main(args) -> int:
    root = Path(args.rootdir).resolve()
    index = generate(root / args.results, root / args.out, root / args.tools)
    print(f"report: {index}")
    print(f"view it over HTTP (the multi-file report does not open from file://): "
          f"python3 -m http.server 8000 --directory {index.parent}")
    return 0
