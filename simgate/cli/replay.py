"""``python -m simgate replay``: replay one episode of a case exactly (the library:
:mod:`simgate.replay`).

    python -m simgate replay "pushes-push_n=10-balancebot-lqr-sluggish" 3 [--video]

The case is found by its test id in the scenario files, the episode by its index; its seed
follows from both (simgate.seeds), so nothing else is needed to reproduce it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from simgate.plugin_manager import Host, project_plugins
from simgate.replay import choose_gl, find_case, parse_params, replay


def main(args) -> int:
    if args.video:
        choose_gl()

    rootdir = Path(args.rootdir).resolve()

    sys.path.insert(0, str(rootdir))  # the project's envs/ and policies/ packages
    host = Host(project_plugins=project_plugins(rootdir))
    case = find_case(args.case_id, rootdir / args.scenarios, rootdir, host)
    params = parse_params(getattr(args, "params", None))
    if params is None and not 0 <= args.episode < case.episodes:
        raise SystemExit(f"episode should be between 0 and {case.episodes - 1} for {case.id}, received {args.episode}")
    if args.episode < 0:
        raise SystemExit(f"episode should be ≥ 0, received {args.episode}")
    written = replay(case, args.episode, host, rootdir / args.out, video=args.video, cache_dir=rootdir / args.cache,
                     params=params)
    print(json.dumps(written, indent=1))
    return 0 if written["matches_suite_run"] is not False else 1


def add_arguments(parser) -> None:
    """The replay command's arguments (``python -m simgate replay``)."""
    parser.add_argument("case_id", help="the test id inside [...], e.g. pushes-push_n=10-balancebot-lqr")
    parser.add_argument("episode", type=int)
    parser.add_argument("--scenarios", default="scenarios")
    parser.add_argument("--out", default="reports/replays")
    parser.add_argument("--cache", default="reports/cache", help="the suite's episode cache, to compare with")
    parser.add_argument("--video", action="store_true", help="also render an MP4 (needs OSMesa or EGL)")
    parser.add_argument("--params", default=None,
                        help="a search row's values as JSON, {\"apply_pushes.force\": 9.5, ...} (a counterexample)")
