"""The command lines simgate prints for a person to paste (a leaf: the runner quotes a search
row's, the reports the worst episode's; :mod:`simgate.cli.replay` runs them).

Each names this interpreter, so it works outside an activated virtual environment too."""

from __future__ import annotations

import json


def replay_command(case_id: str, episode: int) -> str:
    """The replay command as it runs when pasted: this interpreter, so it works outside an
    activated virtual environment too."""
    import shlex
    import sys

    return f"{shlex.quote(sys.executable)} -m simgate replay {shlex.quote(case_id)} {episode} --video"


def row_command(case_id: str, episode: int, params: dict) -> str:
    """The command replaying a search row (``params``: {axis: value}, episode ``episode``), as it
    runs when pasted (this interpreter)."""
    import shlex
    import sys

    shown = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return (f"{shlex.quote(sys.executable)} -m simgate replay {shlex.quote(case_id)} {episode} "
            f"--params {shlex.quote(shown)} --video")
