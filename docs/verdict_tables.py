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


def cell(payload: dict) -> str:
    gate = payload.get("case", {}).get("gate", True)
    text = payload.get("outcome", "?") + ("" if gate else " (info)")
    success = next((r for r in payload.get("requirements", []) if r.get("kind") == "success_rate"), None)
    if success is not None:
        numbers = success.get("numbers", {})
        k, n = numbers.get("k", numbers.get("successes")), numbers.get("n")
        if k is not None and n is not None:
            text += f" {k}/{n}"
    modes = sorted((payload.get("failure_modes") or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:2]  # JSON sorts keys
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
        alarms = set()
        if verdict.is_file():
            candidates = json.loads(verdict.read_text()).get("candidates") or {}
            alarms = {cid for c in candidates.values() for cid in c.get("regression_alarms") or []}
        for cid, payload in summary.get("cases", {}).items():
            payload = {**payload, "regression": cid in alarms}
            case = payload.get("case", {})
            policy = case.get("policy", "")
            key = cid[: -len(policy) - 1] if policy and cid.endswith("-" + policy) else cid
            envs.setdefault(case.get("env", "?"), {})[(key, policy)] = payload
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
