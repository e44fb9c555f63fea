"""simgate's commands, ``python -m simgate report|replay|contract|summary|plan|pin`` (the gate itself is ``pytest``):
the argument parser here, each command in its own module (:mod:`simgate.cli.report`,
:mod:`simgate.cli.replay`, :mod:`simgate.cli.contract`)."""

from __future__ import annotations

import argparse
import sys

from simgate.cli import contract as contract_command
from simgate.cli import pin as pin_command
from simgate.cli import plan as plan_command
from simgate.cli import replay as replay_command
from simgate.cli import report as report_command
from simgate.cli import summary as summary_command
from simgate.errors import SimgateError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="simgate", description="simgate's report, replay and contract commands (the gate itself is pytest)")
    parser.add_argument("--rootdir", default=".", help="the project folder (default: here)")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="HTML report from Allure results (Allure 2, history kept)")
    report.add_argument("--results", default="reports/allure-results")
    report.add_argument("--out", default="reports/allure-report")
    report.add_argument("--tools", default="reports/.allure", help="where the Allure generator is installed")
    replay_command.add_arguments(commands.add_parser("replay", help="re-run one episode of a case exactly: trajectory, check, video"))
    contract_command.add_arguments(commands.add_parser("contract", help="check a policy's contract against a log of its training env"))
    pin_command.add_arguments(commands.add_parser("pin", help="pin failed episodes as a regression scenario every later candidate must pass"))
    plan_command.add_arguments(commands.add_parser("plan", help="what the gate will run, before it runs; pin (--write) or --check the study"))
    summary_command.add_arguments(commands.add_parser("summary", help="the verdict as markdown (CI job summary, PR comment)"))
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "plan":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "plan":  # everything simgate does not know is pytest's (--policy, -k, ...)
        args.pytest_args = list(args.pytest_args) + extra
    commands_by_name = {"report": report_command, "contract": contract_command, "summary": summary_command,
                        "plan": plan_command, "pin": pin_command, "replay": replay_command}
    try:
        return commands_by_name[args.command].main(args)
    except SimgateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 4

