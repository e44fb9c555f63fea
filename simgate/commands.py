"""The command lines simgate prints for a person to paste (a leaf: the runner quotes a search
row's, the reports the worst episode's; :mod:`simgate.cli.replay` runs them).

Each is written to run on another machine: ``python -m simgate`` (the interpreter of the
environment simgate is installed in, activated), never the absolute path of the virtual
environment that ran the suite. What makes the replay the same episode is the case id, the
episode index and the code and policy it ran with; reports print the commit and the policy's
digest beside the command (:func:`provenance`)."""

from __future__ import annotations

import json
import shlex

#: how every printed command starts
PROGRAM = "python -m simgate"


def replay_command(case_id: str, episode: int) -> str:
    """The command replaying episode ``episode`` of case ``case_id`` with its video."""

    return f"{PROGRAM} replay {shlex.quote(case_id)} {episode} --video"


def row_command(case_id: str, episode: int, params: dict) -> str:
    """The command replaying a search row (``params``: {axis: value}, episode ``episode``)."""

    shown = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return f"{PROGRAM} replay {shlex.quote(case_id)} {episode} --params {shlex.quote(shown)} --video"


def provenance(commit: str | None, policy_sha256: str | None) -> str:
    """What a replay must run with to give the same episode, said beside its command."""
    parts = [f"commit {commit[:12]}" if commit else "commit unknown"]
    if policy_sha256:
        parts.append(f"policy sha256 {policy_sha256[:16]}")
    return "at " + ", ".join(parts)
