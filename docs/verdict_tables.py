"""README's verdict tables, generated from the summary.json files of real runs, so they cannot go
stale by hand:

    python docs/verdict_tables.py reports/runs/<id>/summary.json [more summary.json ...]        # print
    python docs/verdict_tables.py --write README.md reports/runs/<id>/summary.json [...]        # update

One table per env: a row per case (scenario and matrix point), a column per policy; a cell is
the verdict (`(info)`: informational, `gate: false`), the successes k/n, the two most frequent
failure modes and, when the run's verdict.json (beside the summary) confirmed it, "worse than"
the baseline. Later files win for a (case, policy) both contain. ``--write`` replaces, in the
README, the block between ``<!-- verdict table ENV -->`` and ``<!-- end verdict table ENV -->`` of
every env the summaries cover, and leaves the other envs' blocks as they are.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# the promotion overview's readings of a case record (simgate/reporting/overview.py): one
# definition of a row's key, the successes, the failure modes' order and the confirmed regressions
from simgate.reporting.overview import case_key, confirmed_regressions, ranked_modes, success_of


def cell(payload: dict) -> str:
    gate = payload.get("case", {}).get("gate", True)
    text = payload.get("outcome", "?") + ("" if gate else " (info)")
    success = success_of(payload)
    if success is not None:
        text += f" {success[0]}/{success[1]}"
    # this case's modes, most frequent first (ties by name), as the overview ranks them
    modes = [(row["mode"], row["episodes"]) for row in ranked_modes({"case": payload})[:2]]
    if modes:
        text += " (" + ", ".join(f"{m} {c}" for m, c in modes) + ")"
    baseline = payload.get("case", {}).get("baseline") or "the baseline"
    if payload.get("regression"):  # confirmed by the run's verdict (one Holm family per candidate)
        text += f"; worse than {baseline}"
    return text


def gather(paths: list[Path]) -> dict[str, dict[tuple[str, str], dict]]:
    """env → (case key, policy) → case record, later files first."""
    envs: dict[str, dict] = {}
    for path in paths:
        summary = json.loads(path.read_text())
        verdict = path.with_name("verdict.json")  # written beside it by the same run
        alarms = confirmed_regressions(json.loads(verdict.read_text())) if verdict.is_file() else set()
        for cid, payload in summary.get("cases", {}).items():
            payload = {**payload, "regression": cid in alarms}
            case = payload.get("case", {})
            envs.setdefault(case.get("env", "?"), {})[(case_key(payload), case.get("policy", ""))] = payload
    return envs


def table(cells: dict[tuple[str, str], dict]) -> str:
    policies = sorted({p for _, p in cells})
    keys = sorted({k for k, _ in cells})
    lines = ["| case | " + " | ".join(f"`{p}`" for p in policies) + " |", "|---|" + "---|" * len(policies)]
    for key in keys:
        lines.append(f"| `{key}` | " + " | ".join(cell(cells[(key, p)]) if (key, p) in cells else "-" for p in policies)
                     + " |")
    return "\n".join(lines)


def blocks(envs: dict[str, dict]) -> dict[str, str]:
    return {env: f"**{env}**\n\n{table(cells)}" for env, cells in envs.items()}


def write(readme: Path, generated: dict[str, str]) -> list[str]:
    """Replace each env's block in ``readme``; returns the envs that had no block there."""
    text = readme.read_text()
    missing = []
    for env, block in generated.items():
        pattern = re.compile(rf"(<!-- verdict table {re.escape(env)} -->\n).*?(\n<!-- end verdict table {re.escape(env)} -->)",
                             re.S)
        if not pattern.search(text):
            missing.append(env)
            continue
        text = pattern.sub(lambda m: m.group(1) + block + m.group(2), text)
    readme.write_text(text)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summaries", nargs="+", type=Path, help="summary.json files of complete runs")
    parser.add_argument("--write", type=Path, metavar="README", help="update the tables in this file")
    parser.add_argument("--env", action="append", default=[], metavar="ENV",
                        help="only this env's table (repeatable; default: every env the summaries cover)")
    args = parser.parse_args(argv)
    envs = gather(args.summaries)
    generated = blocks({env: cells for env, cells in envs.items() if not args.env or env in args.env})
    if args.write is None:
        print("\n\n".join(generated.values()))
        return 0
    missing = write(args.write, generated)
    for env in missing:
        print(f"{args.write}: no '<!-- verdict table {env} -->' block; add one where the table belongs", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
