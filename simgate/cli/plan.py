"""``python -m simgate plan``: what the gate will run, before it runs, and the study to pin it.

    python -m simgate plan [--write study.json | --check study.json] [pytest arguments, e.g. suites/ --policy X]

The cases are expanded exactly as ``pytest`` expands them (the same conftest plugins, candidates,
baselines and scenario folder: the command runs pytest with ``--simgate-plan``, which stops after
configuration). Prints each case's planned episodes and the drop its comparison with the baseline
detects with 90 % power. ``--write`` pins the study; ``--check`` says how this selection differs
from a pinned study (exit 3 if it does, as ``pytest --simgate-study`` would refuse it)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from simgate import study
from simgate.errors import SimgateError


def add_arguments(parser) -> None:
    parser.add_argument("--write", metavar="FILE", help="pin the study: write it to FILE")
    parser.add_argument("--check", metavar="FILE", help="compare this selection with the study pinned in FILE")
    parser.add_argument("pytest_args", nargs="*", help="pytest's arguments (the run's selection), e.g. suites/")


def main(args) -> int:
    root = Path(args.rootdir).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.write).resolve() if args.write else Path(tmp) / "study.json"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--simgate-plan",
                               str(out), *args.pytest_args], cwd=root, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            shown = (proc.stderr.strip() or proc.stdout.strip())[-4000:]
            raise SimgateError(f"pytest could not plan this selection (exit {proc.returncode}):\n{shown}")
        current = study.load(out)
        print("\n".join(study.plan_lines(current)))
        if args.write:
            print(f"study {current['hash'][:12]} written to {out}; gate on it with: pytest ... --simgate-study {args.write}")
        if args.check:
            try:
                pinned = study.load((root / args.check) if not Path(args.check).is_absolute() else Path(args.check))
            except study.StudyError as exc:
                print(f"INVALID: {exc}", file=sys.stderr)
                return 3
            changed = study.differences(pinned, current)
            if changed:
                print(f"INVALID: this selection differs from the pinned study {pinned['hash'][:12]} in {len(changed)} "
                      "way(s):\n  " + "\n  ".join(changed), file=sys.stderr)
                return 3
            print(f"matches the pinned study {pinned['hash'][:12]}")
    return 0
