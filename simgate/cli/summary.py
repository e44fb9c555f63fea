"""The run's verdict as markdown, for a CI job summary or a pull-request comment.

    python -m simgate summary --markdown [--reports reports] >> "$GITHUB_STEP_SUMMARY"

Reads ``verdict.json`` (and ``summary.json`` for each finding's case) from the reports folder:
the run's outcome, then one row per candidate (PASS / FAIL / INCONCLUSIVE / INVALID) and one row
per finding that decides it, with the command replaying the case's worst episode. Exits with the
run's exit code (0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 INVALID), so a CI step may run it alone."""

from __future__ import annotations

import json
from pathlib import Path

from simgate.commands import replay_command
from simgate.errors import SimgateError
from simgate.reporting.final import candidate_decision
from simgate.reporting.promotion import EXIT_CODES, INVALID


def add_arguments(parser) -> None:
    parser.add_argument("--markdown", action="store_true", help="markdown (the only format so far)")
    parser.add_argument("--reports", default="reports", help="the folder holding verdict.json and summary.json")


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(verdict: dict, summary: dict | None) -> str:
    cases = (summary or {}).get("cases") or {}
    lines = [f"## simgate: {verdict.get('decision', 'UNKNOWN')}", ""]
    if not verdict.get("complete", True):
        lines += ["The run was incomplete: nothing may be promoted from it.", ""]
    lines += ["| candidate | outcome | findings |", "|---|---|---|"]
    candidates = verdict.get("candidates") or {}
    for policy, candidate in candidates.items():
        n = len(candidate.get("blocking", [])) + len(candidate.get("not_evaluated", []))
        lines.append(f"| {_cell(policy)} | **{candidate_decision(candidate)}** | {n} |")
    rows = []
    for policy, candidate in candidates.items():
        for finding in candidate.get("findings", []):
            worst = (cases.get(finding["case"]) or {}).get("worst_episode")
            command = f"`{replay_command(finding['case'], worst)}`" if worst is not None else ""
            rows.append(f"| {_cell(policy)} | {_cell(finding['case'])} | {_cell(finding['kind'])} | "
                        f"{_cell(finding['text'])} | {command} |")
        for line in candidate.get("not_evaluated", []):
            rows.append(f"| {_cell(policy)} | {_cell(line.split(':', 1)[0])} | not evaluated | {_cell(line)} | |")
    if rows:
        lines += ["", "| candidate | case | finding | what | replay |", "|---|---|---|---|---|", *rows]
    return "\n".join(lines) + "\n"


def main(args) -> int:
    folder = Path(args.rootdir) / args.reports
    try:
        verdict = json.loads((folder / "verdict.json").read_text())
    except FileNotFoundError:
        raise SimgateError(f"{folder / 'verdict.json'} does not exist: run pytest suites/ first, or pass --reports") from None
    except ValueError as exc:
        raise SimgateError(f"{folder / 'verdict.json'} is not JSON ({exc})") from None
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (FileNotFoundError, ValueError):
        summary = None
    print(markdown(verdict, summary), end="")

    if verdict.get("promote"):
        return 0
    if verdict.get("decision") == "ERROR":  # the run refused its input before running anything: a usage error
        return 4
    code = EXIT_CODES.get(verdict.get("decision"), EXIT_CODES[INVALID])
    return code or EXIT_CODES[INVALID]  # "PASS" in a verdict that does not promote contradicts itself: never 0
