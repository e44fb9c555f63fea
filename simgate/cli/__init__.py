"""simgate's commands, ``python -m simgate report|replay|contract|summary|plan|pin`` (the gate itself is ``pytest``):
the argument parser here, each command in its own module (:mod:`simgate.cli.report`,
:mod:`simgate.cli.replay`, :mod:`simgate.cli.contract`)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simgate", description="simgate's report, replay and contract commands (the gate itself is pytest)")
    parser.add_argument("--rootdir", default=".", help="the project folder (default: here)")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="HTML report from Allure results (Allure 2, history kept)")
    report.add_argument("--results", default="reports/allure-results")
    report.add_argument("--out", default="reports/allure-report")
    report.add_argument("--tools", default="reports/.allure", help="where the Allure generator is installed")
    replay = commands.add_parser("replay", help="re-run one episode of a case exactly: trajectory, check, video")
    from simgate.cli.replay import add_arguments

    add_arguments(replay)
    contract = commands.add_parser("contract", help="check a policy's contract against a log of its training env")
    from simgate.cli.contract import add_arguments as contract_arguments

    contract_arguments(contract)
    pin = commands.add_parser("pin", help="pin failed episodes as a regression scenario every later candidate must pass")
    from simgate.cli.pin import add_arguments as pin_arguments

    pin_arguments(pin)
    plan = commands.add_parser("plan", help="what the gate will run, before it runs; pin (--write) or --check the study")
    from simgate.cli.plan import add_arguments as plan_arguments

    plan_arguments(plan)
    summary = commands.add_parser("summary", help="the verdict as markdown (CI job summary, PR comment)")
    from simgate.cli.summary import add_arguments as summary_arguments

    summary_arguments(summary)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "plan":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "plan":  # everything simgate does not know is pytest's (--policy, -k, ...)
        args.pytest_args = list(args.pytest_args) + extra
    from simgate.errors import SimgateError

    try:
        if args.command == "report":
            from simgate.cli.report import main as run
        elif args.command == "contract":
            from simgate.cli.contract import main as run
        elif args.command == "summary":
            from simgate.cli.summary import main as run
        elif args.command == "plan":
            from simgate.cli.plan import main as run
        elif args.command == "pin":
            from simgate.cli.pin import main as run
        else:
            from simgate.cli.replay import main as run
        return run(args)
    except SimgateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 4

