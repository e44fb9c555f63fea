"""Check a policy's contract against a log recorded in its training env.

    python -m simgate contract check quadruped-robust-contract logs/episode.npz [--tolerance 1e-6]

The log's format and the replay: :mod:`simgate.robots.logcheck`. Prints one line per observation
term, one for ctrl and one for the network's actions on the logged observations, then the
verdict. Exit 0: everything within the tolerance (the contract's ``log.tolerance`` if set, else
1e-4); 1: a term, ctrl or the actions exceed it; 4: bad input (unknown policy, no contract, a
log that does not fit).
"""

from __future__ import annotations

import sys
from pathlib import Path

from simgate.errors import SimgateError
from simgate.plugin_manager import Host, project_plugins
from simgate.robots.logcheck import check_log
from simgate.runner import build_env


def add_arguments(parser) -> None:
    """``contract``'s subcommands (``python -m simgate contract check ...``)."""
    commands = parser.add_subparsers(dest="contract_command", required=True)
    check = commands.add_parser("check", help="replay a training log through a policy's contract: per term and "
                                              "per actuator, the largest difference")
    check.add_argument("policy", help="a registered policy with a contract (its manifest's 'contract:')")
    check.add_argument("log", help="the .npz log recorded in the training env (format: simgate/robots/logcheck.py)")
    check.add_argument("--tolerance", type=float, default=None,
                       help="largest allowed difference (default: the contract's log.tolerance, else 1e-4)")


def main(args) -> int:
    rootdir = Path(args.rootdir).resolve()
    if str(rootdir) not in sys.path:
        sys.path.insert(0, str(rootdir))  # the project's envs/ and policies/ packages
    host = Host(project_plugins=project_plugins(rootdir))
    spec = host.registries.policies.get(args.policy)
    if getattr(spec, "contract", None) is None:
        raise SimgateError(f"policy {args.policy!r} ({spec.manifest}) has no contract: 'contract check' replays a log "
                           "through a policy's observation/action contract; add 'contract:' to its manifest entry")
    if args.tolerance is not None and not args.tolerance > 0:
        raise SimgateError(f"--tolerance {args.tolerance!r}: give a positive number (e.g. 1e-4)")
    try:
        env = build_env(host.registries.envs.get(spec.env), spec)
        model = env.build_model()
    except ValueError as exc:
        raise SimgateError(str(exc)) from None
    try:
        policy = spec.load()
    except Exception as exc:  # noqa: BLE001 - a file that cannot be loaded: named, exit 4
        raise SimgateError(str(exc)) from None
    result = check_log(env, Path(args.log), args.tolerance, model, policy=policy)
    print(result.table())
    return 0 if result.ok else 1
