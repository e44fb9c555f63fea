"""Failures become regression cases (issue 25.4): `python -m simgate pin` writes a scenario under
scenarios/regressions/ replaying exactly the failed episodes (and a search counterexample's
params) for every later candidate, requiring as many successes as the policy that fixed them."""

import json
import subprocess
import sys

import yaml

from tests.test_end_to_end import REPO, gate
from tests.test_search import SCENARIO as SEARCH

PUSH = """\
name: push
env: balancebot
episodes: 16
horizon: 6.0
seed: 4
benign: false
perturbations:
  - kind: apply_pushes
    params: {body: chassis, force: 14, duration: 0.1, interval: [1.0, 2.0], until: 4.0, direction: x}
thresholds:
  min_success_rate: 0.1
"""


def pin(*args):
    return subprocess.run([sys.executable, "-m", "simgate", "pin", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def cases(reports):
    return json.loads((reports / "summary.json").read_text())["cases"]


def test_pinned_episodes_replay_exactly_and_block_only_the_policy_that_fails_them(tmp_path):
    scenarios, reports = tmp_path / "scenarios", tmp_path / "reports"
    scenarios.mkdir()
    (scenarios / "push.yaml").write_text(PUSH)
    args = ("-n", "2", "--scenarios", str(scenarios), "--simgate-reports", str(reports), "--policy",
            "balancebot-lqr-sluggish", "--baseline", "balancebot-lqr")
    gate(*args)
    from simgate.cli.pin import _successes
    from simgate.plugin_manager import Host
    from simgate.replay import find_case

    host = Host(project_plugins=["envs", "policies"], autoload=False)
    source = find_case("push-balancebot-lqr-sluggish", scenarios, REPO, host)
    outcomes = _successes(source, "balancebot-lqr-sluggish", host)
    failed = [i for i, ok in enumerate(outcomes) if not ok]
    assert failed and sum(outcomes) == round(16 * cases(reports)["push-balancebot-lqr-sluggish"]["metrics"]["success"])
    # the policy the case already passes: nothing to pin
    passed = [i for i, ok in enumerate(outcomes) if ok]
    if passed:
        refused = pin("push-balancebot-lqr-sluggish", str(passed[0]), "--scenarios", str(scenarios), "--reports", str(reports))
        assert refused.returncode == 4 and "nothing to pin" in refused.stderr
    made = pin("push-balancebot-lqr-sluggish", *map(str, failed), "--scenarios", str(scenarios), "--reports", str(reports))
    assert made.returncode == 0, made.stderr
    [written] = (scenarios / "regressions").glob("*.yaml")
    document = yaml.safe_load(written.read_text())
    k = document["thresholds"]["min_successes"]
    assert document["replay"]["episodes"] == failed and document["replay"]["fixed_by"] == "balancebot-lqr"  # from summary.json
    assert 0 < k <= len(failed)
    # every later run: the pinned episodes are the same episodes (their cache entries are the
    # original case's: same seeds, same world), the failing policy fails them, the fixing one passes
    again = gate(*args[:-4], "--policy", "balancebot-lqr-sluggish", "--policy", "balancebot-lqr", "--baseline", "balancebot-lqr")
    pinned = {cid: c for cid, c in cases(reports).items() if cid.startswith(document["name"])}
    sluggish, lqr = pinned[f"{document['name']}-balancebot-lqr-sluggish"], pinned[f"{document['name']}-balancebot-lqr"]
    assert sluggish["outcome"] == "FAIL" and lqr["outcome"] == "PASS", again.stdout[-3000:]
    assert sluggish["episodes_run"] == 0 and sluggish["episodes_cached"] == len(failed)
    [requirement] = sluggish["requirements"]
    assert requirement["kind"] == "pinned_successes" and requirement["numbers"]["successes"] == 0
    assert "pinned episodes succeed FAIL (0/" in again.stdout


def test_a_search_counterexample_pinned_with_its_params_replays_the_search_row(tmp_path):
    """The counterexample's replay command names its params: pinned with them, the episode is the
    search row's episode bit for bit (the same state fingerprint as its replay)."""
    from simgate.cli.pin import _pinned_case
    from simgate.plugin_manager import Host
    from simgate.replay import find_case, replay
    from simgate.rig import build_rig

    scenarios, reports = tmp_path / "scenarios", tmp_path / "reports"
    scenarios.mkdir()
    (scenarios / "tiny_search.yaml").write_text(SEARCH)
    gate("-n", "0", "--scenarios", str(scenarios), "--simgate-reports", str(reports), "--policy", "balancebot-lqr",
         "--baseline", "none", "--simgate-cache", str(tmp_path / "cache"))
    [c] = cases(reports)["tiny_search-balancebot-lqr"]["search"]["counterexamples"][:1]
    host = Host(project_plugins=["envs", "policies"], autoload=False)
    source = find_case("tiny_search-balancebot-lqr", scenarios, REPO, host)
    replayed = replay(source, c["index"], host, tmp_path / "replays", params=c["params"], cache_dir=tmp_path / "cache")
    assert replayed["matches_suite_run"] is True and replayed["success"] is False
    pinned = _pinned_case(source, "regress_tiny", [c["index"]], c["params"], "balancebot-lqr", None)
    rig = build_rig(pinned, "balancebot-lqr", host.registries, engine="reference")
    [episode] = rig.episodes([c["index"]])
    assert episode.state_hash == replayed["state_hash"] and episode.success is False


def test_the_shipped_regression_case_fails_the_policy_it_was_pinned_from_and_passes_the_one_that_fixed_it(tmp_path):
    """scenarios/regressions/: a shrunk counterexample of quadruped_search, pinned with one command."""
    import shutil

    folder = tmp_path / "scenarios" / "regressions"
    shutil.copytree(REPO / "scenarios" / "regressions", folder)
    run = gate("-n", "2", "--scenarios", str(tmp_path / "scenarios"), "--simgate-reports", str(tmp_path / "reports"),
               "--policy", "quadruped-nominal", "--policy", "quadruped-robust", "--baseline", "quadruped-robust")
    outcomes = {cid: c["outcome"] for cid, c in cases(tmp_path / "reports").items()}
    assert outcomes == {"regress_quadruped_search_e112-quadruped-nominal": "FAIL",
                        "regress_quadruped_search_e112-quadruped-robust": "PASS"}, run.stdout[-3000:]
    assert run.stdout.rstrip().splitlines()[-1] == "simgate: FAIL (exit 1): quadruped-nominal FAIL, quadruped-robust PASS"


def test_a_pinned_case_says_when_the_policy_that_failed_it_is_gone_or_changed(tmp_path):
    """The episodes replay all the same; the requirement says what can no longer be re-checked."""
    folder = tmp_path / "scenarios" / "regressions"
    folder.mkdir(parents=True)
    [shipped] = (REPO / "scenarios" / "regressions").glob("*.yaml")
    document = yaml.safe_load(shipped.read_text())
    for name, policy, digest in (("gone", "quadruped-retired", document["replay"]["failing_digest"]),
                                 ("changed", document["replay"]["failing_policy"], "0" * 64),
                                 ("same", document["replay"]["failing_policy"], document["replay"]["failing_digest"])):
        copy = {**document, "name": f"pinned_{name}",
                "replay": {**document["replay"], "failing_policy": policy, "failing_digest": digest}}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(copy, sort_keys=False))
    run = gate("-n", "0", "--scenarios", str(tmp_path / "scenarios"), "--simgate-reports", str(tmp_path / "reports"),
               "--policy", "quadruped-robust", "--baseline", "none")
    assert run.returncode == 0, run.stdout[-3000:]
    found = {cid.split("-")[0]: c["requirements"][0] for cid, c in cases(tmp_path / "reports").items()}
    assert {k: r["numbers"]["failing_policy_status"] for k, r in found.items()} == {
        "pinned_gone": "unregistered", "pinned_changed": "changed", "pinned_same": "same"}
    assert "'quadruped-retired', which failed them when pinned" in found["pinned_gone"]["bound"]
    assert "has changed since it was pinned (digest 000000000000 then" in found["pinned_changed"]["bound"]
    assert all(r["outcome"] == "PASS" for r in found.values())  # the verdict is the episodes'
