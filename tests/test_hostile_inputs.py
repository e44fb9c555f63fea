"""Inputs that could make the gate vacuous, hang it or crash it: each one stops the run at configure
time (exit 4) with ONE message naming the place (file:line and key, or the plugin) and the fix; no
traceback, no episode run. Every row runs pytest for real on a tiny project."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import mujoco  # noqa: F401
import numpy  # noqa: F401
import pytest

# imported before any pytester fixture takes its sys.modules snapshot (and drops what a test
# imported after it): an extension module cannot be loaded twice in one process
import simgate.plugin_manager  # noqa: F401
from simgate.errors import SimgateError
import simgate.scenarios.expand  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
ONNX = REPO / "policies" / "balancebot_lqr" / "lqr.onnx"
DIGEST = hashlib.sha256(ONNX.read_bytes()).hexdigest()

# line numbers below refer to these two files
SCENARIO = """\
name: flat
env: balancebot
episodes: 4
horizon: 0.2
seed: 1
perturbations:
  - kind: scale_friction
    params: {sliding: 0.8}
thresholds:
  min_success_rate: 0.3
"""
MANIFEST = f"""\
policies:
  - name: bb-lqr
    env: balancebot
    format: scripted
    entry: policies.balancebot_lqr.controller:make_policy
    observation_size: 4
    action_size: 1
  - name: bb-onnx
    env: balancebot
    format: onnx
    file: lqr.onnx
    sha256: {DIGEST}
    observation_size: 4
    action_size: 1
"""
PROJECT_POLICIES = """\
from pathlib import Path

from simgate.plugin_manager import hookimpl
from simgate.policies.manifest import register_manifests

_HERE = Path(__file__).resolve().parent


@hookimpl
def simgate_register_policies(registry):
    register_manifests(registry, _HERE / "pols", rootdir=_HERE)
"""
SCEN = "scenarios/flat.yaml"
MAN = "pols/bb/manifest.yaml"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    monkeypatch.delenv("SIMGATE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.syspathinsert(REPO)  # the repository's envs and its balancebot controller
    pytester.makeconftest('simgate_plugins = ["envs", "project_policies"]\n')
    pytester.makepyfile(project_policies=PROJECT_POLICIES,
                        test_gate="def test_scenario(simgate_result):\n    simgate_result.check()\n")
    pytester.makeini("[pytest]\nsimgate_candidates =\n    bb-lqr\n    bb-onnx\nsimgate_reports = reports\n")
    (pytester.path / "pols" / "bb").mkdir(parents=True)
    (pytester.path / MAN).write_text(MANIFEST)
    shutil.copy(ONNX, pytester.path / "pols" / "bb" / "lqr.onnx")
    (pytester.path / "scenarios").mkdir()
    (pytester.path / SCEN).write_text(SCENARIO)
    return pytester


# -- how a row changes the project -----------------------------------------------------------

def edit(rel: str, old: str, new: str):
    def apply(root: Path) -> None:
        text = (root / rel).read_text()
        assert old in text, (rel, old)
        (root / rel).write_text(text.replace(old, new, 1))
    return apply


def write(rel: str, content: str | bytes):
    def apply(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (root / rel).write_bytes(content)
        else:
            (root / rel).write_text(content)
    return apply


def both(*steps):
    def apply(root: Path) -> None:
        for step in steps:
            step(root)
    return apply


def rename(old: str, new: str):
    return lambda root: (root / old).rename(root / new)


def symlink(rel: str, target: str):
    return lambda root: ((root / rel).unlink(missing_ok=True), (root / rel).symlink_to(target))


def entry_point(module: str, code: str):
    """An installed distribution advertising ``module`` in the simgate group (under site/)."""
    info = "site/acme_bad-1.0.dist-info"
    return both(write(f"site/{module}.py", code),
                write(f"{info}/METADATA", "Metadata-Version: 2.1\nName: acme-bad\nVersion: 1.0\n"),
                write(f"{info}/entry_points.txt", f"[simgate]\nacme = {module}\n"))


def project_plugin(code: str):
    return both(write("badplug.py", code),
                write("conftest.py", 'simgate_plugins = ["envs", "project_policies", "badplug"]\n'))


def bomb(levels: int = 9) -> str:
    out = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    out += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(out) + "\n"


def matrix(**axes: int) -> str:
    """A matrix block sweeping scale_friction's params with ``n`` distinct values each."""
    lines = ["matrix:"]
    for param, n in axes.items():
        values = ", ".join(f"{0.5 + i / 100_000:.5f}" for i in range(n))
        lines.append(f"  {param}: {{param: scale_friction.{param}, values: [{values}]}}")
    return "\n".join(lines) + "\n"


def search(axis: str = "scale_friction.sliding: [0.2, 1.0]", budget: str = "  budget: 10", extra: str = "",
           shift: int = 0):
    """A search: block after the thresholds (lines 11-14 of the scenario, ``shift`` lines later
    when the row adds lines above)."""
    block = f"search:\n  space:\n    {axis}\n{budget}\n" + (extra + "\n" if extra else "")
    return lambda root: (root / S).write_text((root / S).read_text() + block)


@dataclass
class Row:
    id: str
    change: object
    needles: tuple  # each must appear in the one message: file:line, key, fix words
    args: tuple = ()
    absent: str | None = None  # a file the input must not have created


S, M = "scenarios/flat.yaml", "pols/bb/manifest.yaml"
ROWS = [
    # -- 5: inputs that made a gate vacuous ------------------------------------------------------
    Row("nan-threshold", edit(S, "min_success_rate: 0.3", "min_success_rate: .nan"),
        (f"{S}:10", "thresholds.min_success_rate", ".nan is not a finite number", "write a number")),
    Row("zero-threshold", edit(S, "min_success_rate: 0.3", "min_success_rate: 0"),
        (f"{S}:10", "thresholds.min_success_rate", "greater than 0")),
    Row("inf-param", edit(S, "sliding: 0.8", "sliding: .inf"),
        (f"{S}:8", "perturbations[0].params.sliding", ".inf is not a finite number")),
    Row("nan-in-range", edit(S, "sliding: 0.8", "sliding: [0.5, .nan]"),
        (f"{S}:8", "perturbations[0].params.sliding[1]", ".nan is not a finite number")),
    Row("inf-horizon", edit(S, "horizon: 0.2", "horizon: -.inf"),
        (f"{S}:4", "horizon", "-.inf is not a finite number")),
    Row("no-requirement", edit(S, "min_success_rate: 0.3", "regression_margin: 0.1"),
        (f"{S}:9", "thresholds: a gating scenario must require something", "min_success_rate", "gate: false")),
    # -- pinned regression scenarios (python -m simgate pin) ------------------------------------
    Row("min-successes-without-replay", edit(S, "min_success_rate: 0.3", "min_successes: 2"),
        (S, "thresholds.min_successes is for a pinned regression scenario", "use min_success_rate")),
    Row("replay-count-mismatch", edit(S, "min_success_rate: 0.3", "min_successes: 1\nreplay:\n  scenario: flat\n"
                                      "  episodes: [3]\n  pinned_from: flat-x\n  failing_policy: x\n  fixed_by: y"),
        (S, "replay lists 1 episode(s) but episodes is", "must agree")),
    Row("empty-policies", edit(S, "env: balancebot\n", "env: balancebot\npolicies: []\n"),
        (f"{S}:3", "policies", "omit 'policies' to use the configured candidates")),
    Row("upper-case-suffix-is-read", both(rename(S, "scenarios/FLAT.YAML"),
                                          edit("scenarios/FLAT.YAML", "episodes: 4", "episodes: 0")),
        ("scenarios/FLAT.YAML:3", "episodes", "greater than 0")),
    Row("quoted-episodes", edit(S, "episodes: 4", 'episodes: "4"'),
        (f"{S}:3", "episodes", "valid integer", "without quotes")),
    Row("quoted-horizon", edit(S, "horizon: 0.2", 'horizon: "6"'),
        (f"{S}:4", "horizon", "valid number", "without quotes")),
    Row("quoted-seed", edit(S, "seed: 1", 'seed: "1"'), (f"{S}:5", "seed", "without quotes")),
    Row("quoted-gate", edit(S, "seed: 1\n", 'seed: 1\ngate: "yes"\n'), (f"{S}:6", "gate", "valid boolean")),
    Row("quoted-param", edit(S, "sliding: 0.8", 'sliding: "0.8"'),
        (f"{S}:8", "perturbations[0].params.sliding", "without quotes")),
    Row("one-case-id-for-two-values", edit(S, "thresholds:", matrix(sliding=0).replace(
        "values: []", "values: [1, 1.0]") + "thresholds:"),
        (f"{S}:10", "matrix.sliding.values", "1 and 1.0 give the same case id 'sliding=1'", "remove one")),
    Row("manifest-env-typo", edit(M, "    env: balancebot\n    format: onnx", "    env: balancebt\n    format: onnx"),
        (f"{M}:9", "env: policy 'bb-onnx'", "did you mean 'balancebot'?")),
    Row("joint-name-typo", edit(S, "min_success_rate: 0.3", "min_success_rate: 0.3\n  max_mean_torque: {wheeel: 5.0}"),
        (f"{S}:11", "thresholds.max_mean_torque.wheeel", "did you mean 'wheel'?")),
    Row("hard-limit-actuator-typo", edit(S, "seed: 1\n", "seed: 1\nhard_limits:\n  joint_torque: {wheeel: 5.0}\n"),
        (f"{S}:7", "hard_limits.joint_torque.wheeel", "no actuator named 'wheeel'", "did you mean 'wheel'?")),
    Row("hard-limit-body-typo", edit(S, "seed: 1\n", "seed: 1\nhard_limits:\n  contact_force: {wheeel: 10}\n"),
        (f"{S}:7", "hard_limits.contact_force.wheeel", "no body named 'wheeel'", "did you mean 'wheel'?")),
    Row("matrix-over-the-cap", edit(S, "thresholds:", matrix(sliding=101, torsional=100) + "thresholds:"),
        (f"{S}:9", "matrix: 10,100 points", "10,000", "--simgate-max-cases")),
    Row("run-over-the-cap", edit(S, "thresholds:", matrix(sliding=5001) + "thresholds:"),
        ("scenarios", "10,002 cases", f"{S} 10,002", "--simgate-max-cases 10002")),
    Row("policy-without-scenario", both(edit(M, "  - name: bb-onnx", "  - name: arm-x\n    env: arm7-reach\n"
                                          "    format: scripted\n    entry: x:y\n    observation_size: 17\n"
                                          "    action_size: 7\n  - name: bb-onnx")),
        ("policy 'arm-x' (env 'arm7-reach') has no scenario in scenarios", "add a scenario for env 'arm7-reach'",
         "drop it from --policy"), ("--policy", "arm-x")),
    Row("candidate-without-scenario", both(
        edit(M, "  - name: bb-onnx", "  - name: arm-x\n    env: arm7-reach\n    format: scripted\n    entry: x:y\n"
                                     "    observation_size: 17\n    action_size: 7\n  - name: bb-onnx"),
        write("pytest.ini", "[pytest]\nsimgate_candidates =\n    bb-lqr\n    arm-x\n")),
        ("policy 'arm-x' (env 'arm7-reach') has no scenario", "simgate_candidates")),
    # -- 6: alias bomb; 7: tracebacks --------------------------------------------------------------
    Row("alias-bomb", write(S, bomb()), (f"{S}:6", "more than 100,000 values", "alias *a4", "remove the aliases")),
    Row("python-tag", write(S, 'name: !!python/object/apply:os.system ["touch pwned"]\n'),
        (f"{S}:1", "tag '!!python/object/apply:os.system' is not allowed", "plain YAML"), (), "pwned"),
    Row("unknown-tag", edit(S, "seed: 1", "seed: !seed 1"), (f"{S}:5", "tag '!seed' is not allowed")),
    Row("recursive-alias", edit(S, "seed: 1", "seed: &s [1, *s]"), (f"{S}:5", "alias *s", "recursive alias")),
    Row("deep-nesting", edit(S, "seed: 1", "seed: " + "[" * 150 + "]" * 150),
        (f"{S}:5", "deeper than 100 levels", "flatten it")),
    Row("latin1-scenario", write(S, SCENARIO.replace("name: flat", "name: flät").encode("latin-1")),
        (S, "is not a UTF-8 text file", "scenario files are YAML text")),
    Row("binary-scenario", write(S, b"\x00\x01\x02ELF\x00" * 20), (S, "not a UTF-8 text file (binary?)")),
    Row("binary-manifest", write(M, b"\x89PNG\r\n\x1a\n\x00\x00"), (M, "not a UTF-8 text file", "manifest files are YAML")),
    Row("directory-named-yaml", lambda root: (root / "scenarios" / "x.yaml").mkdir(),
        ("scenarios/x.yaml", "is a directory", "rename or remove it")),
    Row("dangling-symlink-yaml", symlink("scenarios/gone.yaml", "nowhere.yaml"),
        ("scenarios/gone.yaml", "cannot be read", "readable")),
    Row("entry-point-import-error", entry_point("acme_bad", "import no_such_dependency_xyz\n"),
        ("simgate plugin 'acme'", "acme-bad", "no_such_dependency_xyz", "uninstall it or set SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1")),
    Row("entry-point-raises", entry_point("acme_bad", "raise RuntimeError('licence server down')\n"),
        ("simgate plugin 'acme'", "RuntimeError: licence server down", "SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1")),
    Row("entry-point-bad-hook-signature", entry_point("acme_bad", "from simgate.plugin_manager import hookimpl\n\n"
                                                                 "@hookimpl\ndef simgate_register_envs(registry, extra):\n"
                                                                 "    pass\n"),
        ("simgate plugin 'acme'", "extra", "simgate/hookspecs.py", "uninstall it")),
    Row("project-plugin-raises", project_plugin("x = 1 / 0\n"),
        ("'badplug'", "simgate_plugins", "ZeroDivisionError", "remove it from simgate_plugins")),
    Row("registration-hook-raises", project_plugin("from simgate.plugin_manager import hookimpl\n\n@hookimpl\n"
                                                   "def simgate_register_envs(registry):\n    raise KeyError('mjcf')\n"),
        ("simgate plugin badplug", "simgate_register_envs raised KeyError", "fix the plugin")),
    # -- 8: policy files --------------------------------------------------------------------------
    Row("file-outside-folder", edit(M, "file: lqr.onnx", "file: ../../../etc/passwd"),
        (f"{M}:11", "policies[1].file: '../../../etc/passwd' is outside the policy's folder",
         "put the file next to the manifest")),
    Row("absolute-file", edit(M, "file: lqr.onnx", "file: /etc/passwd"),
        (f"{M}:11", "policies[1].file: '/etc/passwd' is outside")),
    Row("symlink-escapes-folder", both(symlink("pols/bb/lqr.onnx", str(ONNX))),
        (f"{M}:11", "policies[1].file: 'lqr.onnx' is outside the policy's folder")),
    Row("files-entry-outside", edit(M, "file: lqr.onnx", "file: lqr.onnx\n    files: [../other/gains.json]"),
        (f"{M}:12", "policies[1].files[0]", "is outside the policy's folder")),
    Row("sha256-missing", edit(M, f"    sha256: {DIGEST}\n", ""),
        (f"{M}:11", "policy 'bb-onnx': sha256 is required for onnx", f"sha256: {DIGEST}")),
    Row("sha256-wrong", edit(M, DIGEST, DIGEST[::-1]),
        (f"{M}:12", "policy 'bb-onnx': sha256", DIGEST, DIGEST[::-1], "re-export the policy")),
    Row("sha256-digits-only", edit(M, DIGEST, "0" * 64),
        (f"{M}:12", "policies[1].sha256", "expected a valid string", "put it in quotes")),
    Row("huge-file", write("scenarios/big.yaml", "# " + "x" * 5_000_000 + "\n"),
        ("scenarios/big.yaml", "5,000,003 bytes", "is it the right file?")),
    Row("manifest-format-typo", edit(M, "format: onnx", "format: onxx"), (f"{M}:10", "policies[1].format", "'onnx'")),
    Row("manifest-duplicate-name", edit(M, "name: bb-onnx", "name: bb-lqr"),
        (f"{M}:8", "policies[1].name: policy 'bb-lqr' is already listed at line 2", "unique")),
    Row("manifest-quoted-size", edit(M, "observation_size: 4\n    action_size: 1\n  - name: bb-onnx",
                                     'observation_size: "4"\n    action_size: 1\n  - name: bb-onnx'),
        (f"{M}:6", "policies[0].observation_size", "without quotes")),
    # -- the usual mistakes, still one located message -------------------------------------------
    Row("empty-file", write(S, ""), (f"{S}:1", "must be a mapping")),
    Row("list-at-top-level", write(S, "- name: flat\n- env: balancebot\n"), (f"{S}:1", "must be a mapping")),
    Row("key-typo", edit(S, "episodes: 4", "episode: 4"), (f"{S}:3", "unknown key 'episode'", "did you mean 'episodes'?")),
    Row("duplicate-key", edit(S, "seed: 1", "seed: 1\nseed: 2"), (f"{S}:6", "seed", "appears twice", "keep one")),
    Row("complex-key", edit(S, "seed: 1", "? [seed]\n: 1"), (f"{S}:5", "a key must be a plain name")),
    Row("two-documents", edit(S, "seed: 1", "seed: 1\n---\nseed: 2"), (f"{S}:", "not valid YAML", "single document")),
    Row("zero-episodes", edit(S, "episodes: 4", "episodes: 0"), (f"{S}:3", "episodes", "greater than 0")),
    Row("huge-episodes", edit(S, "episodes: 4", "episodes: 1000000000"), (f"{S}:3", "episodes", "less than or equal to 100000")),
    Row("negative-horizon", edit(S, "horizon: 0.2", "horizon: -1"), (f"{S}:4", "horizon", "greater than 0")),
    Row("alpha-one", edit(S, "seed: 1", "seed: 1\nalpha: 1"), (f"{S}:6", "alpha", "less than 0.5")),
    Row("unknown-kind", edit(S, "kind: scale_friction", "kind: scale_fricton"),
        (f"{S}:7", "perturbations[0].kind", "did you mean 'scale_friction'?")),
    Row("unknown-param", edit(S, "sliding: 0.8", "slidng: 0.8"),
        (f"{S}:8", "unknown key 'slidng'", "did you mean 'sliding'?")),
    Row("matrix-axis-missing-perturbation", edit(S, "thresholds:", "matrix:\n  noise: {param: add_observation_noise.scale, "
                                                                   "values: [1, 2]}\nthresholds:"),
        (f"{S}:10", "matrix.noise.param", "no perturbation of kind 'add_observation_noise'", "add one")),
    Row("unknown-env", edit(S, "env: balancebot", "env: balancebott"), (f"{S}:2", "env", "did you mean 'balancebot'?")),
    Row("same-scenario-name-twice", write("scenarios/other.yaml", SCENARIO),
        ("scenarios/other.yaml:1", "scenario 'flat' is already defined in scenarios/flat.yaml", "unique")),
    # -- search: blocks (simgate.search): lines 11- are the block SEARCH appends ----------------------
    Row("search-key-typo", search(budget="  budjet: 10"), (f"{S}:14", "search.budjet", "did you mean 'budget'?")),
    Row("search-axis-not-listed", search(axis="apply_pushes.force: [1, 30]"),
        (f"{S}:13", "search.space.apply_pushes.force", "no perturbation of kind 'apply_pushes'", "list it there")),
    Row("search-param-typo", search(axis="scale_friction.slidng: [0.2, 1.0]"),
        (f"{S}:13", "search.space.scale_friction.slidng", "did you mean 'sliding'?")),
    Row("search-range-misses-nominal", search(axis="scale_friction.sliding: [0.9, 1.0]"),
        (f"{S}:13", "search.space.scale_friction.sliding", "nominal value 0.8", "widen the range")),
    Row("search-envelope-outside-space", search(extra="  envelope:\n    scale_friction.sliding: [0.1, 1.0]"),
        (f"{S}:16", "search.envelope.scale_friction.sliding", "should lie inside search.space")),
    Row("search-envelope-axis-typo", search(extra="  envelope:\n    scale_friction.slding: [0.5, 1.0]"),
        (f"{S}:16", "search.envelope.scale_friction.slding", "did you mean 'scale_friction.sliding'?")),
    Row("search-of-a-range", both(edit(S, "sliding: 0.8", "sliding: [0.5, 0.9]"), search()),
        (f"{S}:13", "search.space.scale_friction.sliding", "a single number there")),
    Row("search-per-step-kind", both(edit(S, "    params: {sliding: 0.8}\n", "    params: {sliding: 0.8}\n"
                                          "  - kind: mask_observations\n    params: {groups: [imu], probability: 0.5}\n"),
                                     search(axis="mask_observations.probability: [0.1, 0.9]", shift=2)),
        (f"{S}:15", "search.space.mask_observations.probability", "reads its params at every control step", "matrix")),
]


def test_the_tiny_project_passes(project):
    """The table's baseline: unchanged (but for a horizon long enough to succeed: the balancebot
    must hold its target), the project runs and passes, so each row fails for its own defect."""
    edit(S, "horizon: 0.2", "horizon: 6.0")(project.path)
    result = project.runpytest("-p", "no:cacheprovider", "-n", "0")
    assert result.ret == 0, "\n".join(result.outlines[-30:] + result.errlines[-30:])
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_a_hostile_input_stops_the_run_with_one_located_message(project, monkeypatch, row):
    row.change(project.path)
    if (project.path / "site").is_dir():
        monkeypatch.syspath_prepend(str(project.path / "site"))
    monkeypatch.chdir(project.path)
    (project.path / "reports").mkdir(exist_ok=True)
    (project.path / "reports" / "verdict.json").write_text('{"promote": true, "decision": "ALLOWED"}')  # an old run's
    result = project.runpytest("-p", "no:cacheprovider", "-n", "0", *row.args)
    output = "\n".join(result.outlines + result.errlines)
    assert result.ret == 4, output[-3000:]
    assert output.count("ERROR:") == 1, output[-3000:]
    message = output[output.index("ERROR:"):]
    for needle in row.needles:
        assert needle in message, f"{needle!r} not in:\n{message}"
    assert "Traceback" not in output and "INTERNALERROR" not in output
    assert " passed" not in output  # no case ran
    if row.absent:
        assert not (project.path / row.absent).exists()
    verdict = json.loads((project.path / "reports" / "verdict.json").read_text())
    assert verdict["decision"] == "ERROR" and verdict["promote"] is False and "ERROR:" not in verdict["error"]


def test_the_table_covers_every_requirement():
    ids = {r.id for r in ROWS}
    assert len(ROWS) >= 35 and len(ids) == len(ROWS)
    for needed in ("nan-threshold", "inf-param", "inf-horizon", "no-requirement", "empty-policies",
                   "upper-case-suffix-is-read", "quoted-episodes", "one-case-id-for-two-values", "manifest-env-typo",
                   "joint-name-typo", "matrix-over-the-cap", "alias-bomb", "python-tag", "recursive-alias",
                   "latin1-scenario", "binary-manifest", "entry-point-import-error", "file-outside-folder",
                   "absolute-file", "symlink-escapes-folder", "sha256-missing", "sha256-wrong"):
        assert needed in ids


def test_an_alias_bomb_is_rejected_without_being_expanded():
    """9 levels of 9 aliases would be 387 million values; the check reads the event stream only."""
    import tracemalloc

    from simgate.errors import SimgateError
    from simgate.yamlfile import lines as yaml_lines

    tracemalloc.start()
    with pytest.raises(SimgateError, match="more than 100,000 values"):
        yaml_lines.load(bomb(12), "bomb.yaml")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000


def test_the_cap_can_be_raised(tmp_path, host):
    """``max_cases`` (the --simgate-max-cases option) admits a matrix the default refuses."""
    from simgate.errors import SimgateError
    from simgate.scenarios.expand import load_cases

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "flat.yaml").write_text(SCENARIO.replace("thresholds:", matrix(sliding=120) + "thresholds:"))
    args = (tmp_path / "s", tmp_path, host.registries, ["balancebot-lqr"], [])
    with pytest.raises(SimgateError, match="120 points.*--simgate-max-cases"):
        load_cases(*args, max_cases=100)
    assert len(load_cases(*args, max_cases=120)) == 120


def test_a_digest_is_checked_once_for_the_run_not_per_case(tmp_path, host, monkeypatch):
    from simgate.policies.spec import PolicySpec
    from simgate.scenarios.expand import load_cases

    calls = []
    original = PolicySpec.file_digest
    monkeypatch.setattr(PolicySpec, "file_digest", lambda self: calls.append(self.name) or original(self))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "flat.yaml").write_text(SCENARIO.replace("thresholds:", matrix(sliding=5) + "thresholds:"))
    cases = load_cases(tmp_path / "s", tmp_path, host.registries, ["balancebot-lqr-onnx"], [])
    assert len(cases) == 5 and calls == ["balancebot-lqr-onnx"]


def test_manifest_files_are_confined_and_listed(tmp_path):
    from simgate.policies.manifest import read_manifest

    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "gains.json").write_text("{}")
    digest = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # of "{}"
    (folder / "manifest.yaml").write_text("policies:\n  - name: a\n    env: e\n    format: scripted\n    entry: m:f\n"
                                          "    files: [gains.json]\n    observation_size: 1\n    action_size: 1\n"
                                          f"    files_sha256: {{gains.json: {digest}}}\n")
    [spec] = read_manifest(folder / "manifest.yaml")
    assert spec.files == (folder / "gains.json",) and spec.problem(check_digest=True) is None
    (folder / "gains.json").unlink()
    assert "files:" in spec.problem() and "gains.json does not exist" in spec.problem()



# -- push params and joint_limit_exclude (tests/test_contract_fixes.py) --------------------------

def push_entry(params: str):
    """An apply_pushes entry after scale_friction: its params are line 10 of the scenario."""
    return edit(S, "thresholds:", f"  - kind: apply_pushes\n    params: {{{params}}}\nthresholds:")


PUSH_ROWS = [
    Row("push-zero-direction", push_entry("body: chassis, force: 5, interval: 1, direction: [0, 0, 0]"),
        (f"{S}:10", "perturbations[1].params.direction", "non-zero [x, y, z] vector")),
    Row("push-body-list-typo", push_entry("body: [chassis, chasis], force: 5, interval: 1"),
        (f"{S}:10", "perturbations[1].params.body", "no body named 'chasis'", "did you mean 'chassis'?")),
    Row("push-body-list-empty", push_entry("body: [], force: 5, interval: 1"),
        (f"{S}:10", "perturbations[1].params.body", "list the bodies")),
    Row("push-count-zero", push_entry("body: chassis, force: 5, interval: 1, count: 0"),
        (f"{S}:10", "perturbations[1].params.count", "count should be ≥ 1")),
    Row("push-without-time", push_entry("body: chassis, force: 5"),
        (f"{S}:10", "perturbations[1].params", "for a single push write count: 1 and first: <seconds>")),
]


@pytest.mark.parametrize("row", PUSH_ROWS, ids=[r.id for r in PUSH_ROWS])
def test_a_hostile_push_stops_the_run_with_one_located_message(project, monkeypatch, row):
    test_a_hostile_input_stops_the_run_with_one_located_message(project, monkeypatch, row)


def test_a_misspelt_joint_limit_exclusion_fails_its_case_naming_the_closest_joint(host, monkeypatch):
    """An env's joint_limit_exclude is code, not a scenario: a name that is no joint of the model
    fails the case as a setup error (both engines), never excluding nothing in silence."""
    from envs.balancebot.env import BalanceBot
    from simgate.runner import run_case
    from tests.test_engine import make_case

    monkeypatch.setattr(BalanceBot, "joint_limit_exclude", ("pich",))
    for engine in ("reference", "batched"):
        result = run_case(make_case(episodes=2, horizon=0.2), host, engine, None)
        assert result.outcome == "ERROR" and "setup_error" in result.error, result.error
        assert "joint_limit_exclude lists 'pich', which is no joint of its model; did you mean 'pitch'?" in result.error


# -- contract check logs (python -m simgate contract check; tests/test_contract_check.py) --------

from tests.test_contract_check import BAD_LOGS  # noqa: E402


@pytest.fixture(scope="module")
def still_log(host, tmp_path_factory) -> Path:
    """Five control steps of quadruped-robust's network in the Python quadruped: a log the shipped
    contract (and the network, run on its observations) reproduces (exit 0), the base every bad
    log below is made from."""
    from envs.quadruped.env import Quadruped
    from simgate.robots.logcheck import record_log

    env = Quadruped()
    model = env.build_model()
    policy = host.registries.policies.get("quadruped-robust").load()
    return record_log(env, policy, model, 5, 5, tmp_path_factory.mktemp("log") / "still.npz",
                      command=lambda m, d: (d.userdata[0], 0.0, d.userdata[1]), start_yaw=lambda m, d: d.userdata[4])


def _contract_check(capsys, log: Path):
    from simgate.cli import main

    code = main(["--rootdir", str(REPO), "contract", "check", "quadruped-robust-contract", str(log)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_the_still_log_passes_the_contract_check(still_log, capsys):
    code, output = _contract_check(capsys, still_log)
    assert code == 0 and output.splitlines()[-1].startswith("PASS"), output


@pytest.mark.parametrize("make, needles", [b[1:] for b in BAD_LOGS], ids=[b[0] for b in BAD_LOGS])
def test_a_bad_contract_log_is_exit_4_with_one_message_naming_the_file_and_key(still_log, capsys, tmp_path, make,
                                                                               needles):
    bad = make(still_log, tmp_path / "bad.npz")
    code, output = _contract_check(capsys, bad)
    assert code == 4, output
    assert output.count("ERROR:") == 1 and "Traceback" not in output
    message = output[output.index("ERROR:"):]
    for needle in (str(bad),) + tuple(needles):
        assert needle in message, f"{needle!r} not in:\n{message}"



# -- YAML robots and contracts: each bad input is one message with the file, the line, the key
# and the fix, found before any episode runs ------------------------------------------------------
_QUADRUPED = Path(__file__).resolve().parent.parent / "envs" / "quadruped"
_ROBOT_YAML = """\
kind: mjcf
name: walker
scene: walker.xml
base: trunk
control_hz: 50
reset: {keyframe: stand}
feet: [FL_foot, FR_foot, HL_foot, HR_foot]
terminate: {base_height_below: 0.1}
"""


def _robot_folder(tmp_path, robot: str = _ROBOT_YAML, xml: str | None = None) -> Path:
    folder = tmp_path / "walker"
    folder.mkdir(exist_ok=True)
    (folder / "walker.xml").write_text(xml if xml is not None else (_QUADRUPED / "quadruped.xml").read_text())
    (folder / "robot.yaml").write_text(robot)
    return folder / "robot.yaml"


def _robot_error(tmp_path, robot: str = _ROBOT_YAML, xml: str | None = None) -> str:
    from simgate.robots.env import MjcfEnv
    from simgate.robots.load import read_robot

    with pytest.raises((SimgateError, ValueError)) as info:
        MjcfEnv(read_robot(_robot_folder(tmp_path, robot, xml), "envs/walker/robot.yaml"))
    return str(info.value)


def _contract_error(tmp_path, host, edit) -> str:
    """The shipped quadruped contract with ``edit(text)`` applied, bound to the YAML quadruped."""
    from simgate.robots.load import contract_file
    from simgate.robots.configure import _checked
    from simgate.runner import build_env

    path = tmp_path / "contract.yaml"
    path.write_text(edit((Path(__file__).resolve().parent.parent / "policies" / "quadruped" / "contract.yaml").read_text()))
    spec = host.registries.policies.get("quadruped-robust-contract")
    with pytest.raises(SimgateError) as info:
        contract = contract_file(path, "policies/x/contract.yaml")
        bound = build_env(host.registries.envs.get("quadruped-mjcf"), dataclasses.replace(spec, contract=contract))
        problems = _checked(dataclasses.replace(spec, contract=contract), bound)
        if problems:
            raise SimgateError("\n".join(problems))
    return str(info.value)


def test_robot_a_misspelt_key_names_the_line_and_the_closest_key(tmp_path):
    message = _robot_error(tmp_path, _ROBOT_YAML.replace("control_hz: 50", "control_hz: 50\nterminat: {}"))
    assert message.startswith("envs/walker/robot.yaml:6:") and "unknown key 'terminat'" in message
    assert "did you mean 'terminate'" in message


def test_robot_a_keyframe_that_is_not_there_names_the_closest(tmp_path):
    message = _robot_error(tmp_path, _ROBOT_YAML.replace("keyframe: stand", "keyframe: stnad"))
    assert "envs/walker/robot.yaml:6:" in message and "no keyframe named 'stnad'" in message
    assert "did you mean 'stand'" in message


def test_robot_a_keyframe_written_for_another_model_is_refused_not_padded(tmp_path):
    xml = (_QUADRUPED / "quadruped.xml").read_text().replace('qpos="0 0 0.2125 1 0 0 0 ', 'qpos="0 0 0.2125 1 0 0 0 0 0 ')
    message = _robot_error(tmp_path, xml=xml)
    # MuJoCo 4's compiler refuses it (3.x padded it); either way one message naming the robot file
    assert ("keyframe 'stand' has 21 qpos values but the model has 19" in message and "robot.yaml:6" in message) or (
        "invalid qpos size, expected 19, got 21" in message and "robot.yaml:3" in message)


def test_robot_a_foot_that_is_not_in_the_mjcf(tmp_path):
    message = _robot_error(tmp_path, _ROBOT_YAML.replace("HR_foot]", "HR_fot]"))
    assert "no geom or body named 'HR_fot'" in message and "did you mean 'HR_foot'" in message
    assert "robot.yaml:7" in message


def test_robot_a_mesh_folder_that_does_not_exist(tmp_path):
    xml = (_QUADRUPED / "quadruped.xml").read_text().replace(
        '<compiler angle="radian" autolimits="true"/>',
        '<compiler angle="radian" autolimits="true" meshdir="meshes"/>\n  <asset><mesh name="shell" file="shell.stl"/></asset>')
    message = _robot_error(tmp_path, xml=xml)
    assert "scene 'walker.xml' does not compile" in message and "meshes/shell.stl" in message
    assert "robot.yaml:3" in message


def test_robot_a_scene_file_that_does_not_exist(tmp_path):
    from simgate.robots.load import read_robot

    path = _robot_folder(tmp_path, _ROBOT_YAML.replace("scene: walker.xml", "scene: walkr.xml"))
    with pytest.raises(SimgateError, match=r"robot.yaml:3: scene: 'walkr.xml' does not exist"):
        read_robot(path, "envs/walker/robot.yaml")


def test_contract_an_unknown_term_names_the_closest(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("term: gait_phase", "term: gait_phse"))
    assert "policies/x/contract.yaml:" in message and "unknown term 'gait_phse'" in message
    assert "did you mean 'gait_phase'" in message


def test_contract_a_key_the_term_does_not_take(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("{term: gait_phase, hz: 2.0", "{term: gait_phase, hz: 2.0, frame: body"))
    assert "term 'gait_phase' does not take frame; it takes: hz" in message


def test_contract_an_actuator_named_twice(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("HR_abduction, HR_flexion, HR_knee]\n  mapping",
                                                                   "HR_abduction, HR_flexion, HR_flexion]\n  mapping"))
    assert "actuator 'HR_flexion' is listed twice" in message and "policies/x/contract.yaml:" in message


def test_contract_a_sensor_of_the_wrong_kind(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("source: imu_gyro", "source: imu_accel"))
    assert "sensor 'imu_accel' is a mjSENS_ACCELEROMETER, not a gyro sensor" in message


def test_contract_sizes_that_do_not_add_up_to_the_network(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("  - {term: gait_phase, hz: 2.0, group: clock}\n",
                                                                   "  - {term: gait_phase, hz: 2.0, group: clock}\n"
                                                                   "  - {term: padding, size: 2}\n"))
    assert "observation_size is 34 in the manifest (" in message and "observation_size) but its contract gives 36" in message
    assert "padding 2" in message


def test_contract_a_network_whose_input_is_not_the_contract_s(tmp_path, host):
    """The manifest and the contract agree, the ONNX file does not."""
    from simgate.robots.check import check_policy_against_contract
    from simgate.robots.load import contract_file
    from simgate.runner import build_env

    path = tmp_path / "contract.yaml"
    path.write_text((Path(__file__).resolve().parent.parent / "policies" / "quadruped" / "contract.yaml").read_text()
                    .replace("  - {term: gait_phase, hz: 2.0, group: clock}\n", "  - {term: gait_phase, hz: 2.0, group: clock}\n"
                             "  - {term: padding, size: 2}\n"))
    spec = host.registries.policies.get("quadruped-robust-contract")
    spec = dataclasses.replace(spec, observation_size=36, contract=contract_file(path, "contract.yaml"))
    env = build_env(host.registries.envs.get("quadruped-mjcf"), spec)
    (problem,) = check_policy_against_contract(spec, env)
    assert "the ONNX model's input" in problem and "has 34 values per row" in problem and "contract gives 36" in problem


# -- held-out rows: a search too large to build or too poor to run, entry-point plugins that
# fail or collide, policy folders that link out, an episodes: auto that cannot reach its drop --

#: nine searchable params of the balancebot: (axis, nominal perturbation entry, space, envelope)
_AXES = [
    ("scale_friction.sliding", None, "[0.5, 1.0]", "[0.6, 0.9]"),
    ("scale_friction.torsional", None, "[0.5, 1.5]", "[0.8, 1.2]"),
    ("scale_friction.rolling", None, "[0.5, 1.5]", "[0.8, 1.2]"),
    ("scale_joint_damping.damping", "  - kind: scale_joint_damping\n    params: {damping: 1.0}\n", "[0.5, 1.5]", "[0.8, 1.2]"),
    ("scale_joint_damping.armature", None, "[0.5, 1.5]", "[0.8, 1.2]"),
    ("scale_joint_damping.frictionloss", None, "[0.5, 1.5]", "[0.8, 1.2]"),
    ("set_gravity.scale", "  - kind: set_gravity\n    params: {scale: 1.0}\n", "[0.8, 1.2]", "[0.9, 1.1]"),
    ("scale_body_mass.scale", "  - kind: scale_body_mass\n    params: {scale: 1.0}\n", "[0.8, 1.2]", "[0.9, 1.1]"),
    ("add_payload.fraction", "  - kind: add_payload\n    params: {body: chassis, fraction: 0.0}\n", "[0.0, 0.5]", "[0.0, 0.2]"),
]


def wide_search(axes: int, envelope: int, tail: str) -> tuple[str, dict]:
    """The scenario with ``axes`` search axes, the first ``envelope`` of them in the envelope, and
    ``tail`` (budget, levels) last; with the line of each search key."""
    entries = "".join(entry for _, entry, _, _ in _AXES[:axes] if entry)
    text = SCENARIO.replace("    params: {sliding: 0.8}\n", "    params: {sliding: 0.8}\n" + entries)
    text += "search:\n  space:\n" + "".join(f"    {name}: {space}\n" for name, _, space, _ in _AXES[:axes])
    if envelope:
        text += "  envelope:\n" + "".join(f"    {name}: {box}\n" for name, _, _, box in _AXES[:envelope])
    text += tail
    lines = {line.strip().split(":")[0]: i + 1 for i, line in enumerate(text.splitlines()) if line.startswith("  ")}
    return text, lines


_BIG, _BIG_LINES = wide_search(8, 8, "  budget: 100000\n  levels: 9\n")
_POOR, _POOR_LINES = wide_search(9, 9, "  budget: 3\n  levels: 2\n")
_THIN, _THIN_LINES = wide_search(2, 2, "  budget: 60\n  levels: 2\n")

HELD_OUT_ROWS = [
    Row("search-design-over-the-cap", write(S, _BIG),
        (f"{S}:{_BIG_LINES['levels']}", "search.levels", "43,046,721 points", "9 levels on each of its 8 axes",
         "100,000", "lower search.levels")),
    Row("search-budget-cannot-cover-nine-axes", write(S, _POOR),
        (f"{S}:{_POOR_LINES['budget']}", "search.budget: 3 episodes cannot cover this search",
         "boundary stage's share is 1, fewer than the 144 episodes", "512 covering-design points",
         "raise search.budget to at least 10,240")),
    Row("search-budget-cannot-certify-the-envelope", write(S, _THIN),
        (f"{S}:{_THIN_LINES['budget']}", "search.budget: 60", "certification's share is 12, fewer than the 16 episodes",
         "4 covering-design points need (4 each", "success ≥ 0.3 at alpha 0.05", "raise search.budget to at least 80")),
]


@pytest.mark.parametrize("row", HELD_OUT_ROWS, ids=[r.id for r in HELD_OUT_ROWS])
def test_a_held_out_input_stops_the_run_with_one_located_message(project, monkeypatch, row):
    test_a_hostile_input_stops_the_run_with_one_located_message(project, monkeypatch, row)


def test_a_search_budget_that_covers_its_envelope_is_accepted(tmp_path, host):
    """The smallest budget the message names is enough: one less is refused."""
    from simgate.scenarios.loader import load_file

    text, _ = wide_search(2, 2, "  budget: 80\n  levels: 2\n")
    (tmp_path / "flat.yaml").write_text(text)
    load_file(tmp_path / "flat.yaml", "flat.yaml", host.registries)
    (tmp_path / "flat.yaml").write_text(text.replace("budget: 80", "budget: 79"))
    with pytest.raises(SimgateError, match="raise search.budget to at least 80"):
        load_file(tmp_path / "flat.yaml", "flat.yaml", host.registries)


def test_the_covering_design_refuses_to_allocate_past_the_cap():
    from simgate.search.certify import covering_design

    with pytest.raises(ValueError, match="43,046,721 points"):
        covering_design([[0.2, 0.8]] * 8, 9)


def _hook(name: str, body: str) -> str:
    return f"from simgate.plugin_manager import hookimpl\n\n\n@hookimpl\ndef {name}(registry):\n    {body}\n"


_EP = "the entry point 'acme = acme_bad' of the installed distribution acme-bad"
PLUGIN_ROWS = [
    Row("entry-point-hook-raises", entry_point("acme_bad", _hook("simgate_register_envs", "raise KeyError('mjcf')")),
        ("simgate plugin acme", _EP, "simgate_register_envs raised KeyError: 'mjcf'",
         "uninstall it or set SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1")),
    Row("entry-point-hook-calls-sys-exit", entry_point("acme_bad", "import sys\n\n" + _hook("simgate_register_envs",
                                                                                           "sys.exit(3)")),
        ("simgate plugin acme", _EP, "simgate_register_envs called sys.exit(3)", "SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1")),
    Row("entry-point-import-calls-sys-exit", entry_point("acme_bad", "import sys\nsys.exit()\n"),
        ("simgate plugin 'acme'", "acme-bad", "cannot be imported: called sys.exit()",
         "SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1")),
    Row("project-plugin-hook-calls-sys-exit", project_plugin(_hook("simgate_register_envs", "raise SystemExit(1)")),
        ("simgate plugin badplug", "simgate_plugins", "simgate_register_envs called sys.exit(1)", "fix the plugin")),
    Row("entry-point-name-clashes-with-a-built-in", entry_point("acme_bad", _hook(
        "simgate_register_perturbations", "registry.add('scale_friction', object)")),
        ("plugin acme: perturbation 'scale_friction' is already registered by plugin simgate.builtin.perturbations",
         f"plugin acme is {_EP}: uninstall it or set SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1",
         "plugin simgate.builtin.perturbations is built into simgate")),
    Row("entry-point-name-clashes-with-the-repos-env", entry_point("acme_bad", _hook(
        "simgate_register_envs", "registry.add('balancebot', 'acme_bad:make')")),
        ("plugin envs: env 'balancebot' is already registered by plugin acme", f"plugin acme is {_EP}",
         "SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1", "plugin envs is the module 'envs' listed in simgate_plugins")),
    Row("entry-point-name-clashes-with-the-repos-robot", entry_point("acme_bad", _hook(
        "simgate_register_envs", "registry.add('quadruped-mjcf', 'acme_bad:make')")),
        ("quadruped_mjcf/robot.yaml:6", "env 'quadruped-mjcf' is already registered (by plugin acme)",
         f"plugin acme is {_EP}: uninstall it or set SIMGATE_DISABLE_PLUGIN_AUTOLOAD=1")),
]


@pytest.mark.parametrize("row", PLUGIN_ROWS, ids=[r.id for r in PLUGIN_ROWS])
def test_a_held_out_plugin_fault_stops_the_run_with_one_located_message(project, monkeypatch, row):
    test_a_hostile_input_stops_the_run_with_one_located_message(project, monkeypatch, row)


OUTSIDE = str(REPO / "envs")  # any folder outside the project (the testers used /usr/share)


def _linked_tables(root: Path) -> None:
    (root / "pols/bb/tables").mkdir(parents=True)
    (root / "pols/bb/tables/data").symlink_to(OUTSIDE, target_is_directory=True)


LINK_ROWS = [
    Row("policy-folder-links-out", symlink("pols/bb/share", OUTSIDE),
        (f"{M}:1", f"share in the policy's folder is a link to {OUTSIDE}, outside it", "remove the link")),
    Row("files-folder-links-out", both(_linked_tables, edit(M, "file: lqr.onnx", "file: lqr.onnx\n    files: [tables]")),
        (f"{M}:12", f"policies[1].files[0]: 'tables' holds tables/data, a link to {OUTSIDE}, outside the policy's folder",
         "remove the link")),
]


@pytest.mark.parametrize("row", LINK_ROWS, ids=[r.id for r in LINK_ROWS])
def test_a_link_out_of_a_policy_folder_stops_the_run_naming_the_link(project, monkeypatch, row):
    test_a_hostile_input_stops_the_run_with_one_located_message(project, monkeypatch, row)


def test_a_files_folder_is_named_as_a_folder_not_as_missing(tmp_path):
    from simgate.policies.manifest import read_manifest

    folder = tmp_path / "p"
    (folder / "tables").mkdir(parents=True)
    (folder / "manifest.yaml").write_text("policies:\n  - name: a\n    env: e\n    format: scripted\n    entry: m:f\n"
                                          "    files: [tables]\n    observation_size: 1\n    action_size: 1\n")
    [spec] = read_manifest(folder / "manifest.yaml")
    assert "is a folder; list the files in it" in spec.problem() and "does not exist" not in spec.problem()
    (folder / "tables" / "up").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(SimgateError, match="'tables' holds tables/up, a link to .*outside the policy's folder") as info:
        read_manifest(folder / "manifest.yaml")
    assert "does not exist" not in str(info.value)


def test_the_cache_hash_refuses_a_link_out_of_the_folder_and_follows_one_inside(tmp_path):
    from simgate.cache import LinkOutside, source_digest

    package = tmp_path / "pkg"
    (package / "data").mkdir(parents=True)
    (package / "data" / "gains.json").write_text("{}")
    (package / "same").symlink_to(package / "data", target_is_directory=True)  # inside: followed
    inside = source_digest(package)
    (package / "share").symlink_to(OUTSIDE, target_is_directory=True)
    with pytest.raises(LinkOutside, match=f"pkg/share is a link to {OUTSIDE}, outside .*remove the link"):
        source_digest(package)
    (package / "share").unlink()
    (package / "notes.txt").symlink_to(REPO / "README.md")  # a file link out too
    with pytest.raises(LinkOutside, match="notes.txt is a link to"):
        source_digest(package)
    (package / "notes.txt").unlink()
    assert source_digest(package) == inside


def test_a_module_file_linked_in_from_elsewhere_hashes_its_own_package(tmp_path, monkeypatch):
    import types

    from simgate.cache import module_location

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").symlink_to(REPO / "simgate" / "errors.py")
    module = types.ModuleType("pkg.mod")
    module.__file__ = str(tmp_path / "pkg" / "mod.py")
    assert module_location(module) == ("pkg", (tmp_path / "pkg").resolve())


# episodes: auto plans with scipy's binomial tails: loaded before any pytester snapshot (see the top)
import scipy.special  # noqa: E402,F401


def auto_episodes(drop: float, most: int):
    """``episodes: auto`` for a drop of ``drop``, ``most`` on line 6 of the scenario."""
    return edit(S, "episodes: 4\n", f"episodes: auto\ndetect:\n  drop: {drop}\n  most: {most}\n")


AUTO_ROWS = [
    Row("auto-drop-out-of-reach", auto_episodes(0.01, 200),
        (f"{S}:6", "detect: a drop of 0.01 from a baseline success rate of 0.3 cannot be detected with power 0.9 "
                   "within most: 200 episodes", "level 0.025", "raise detect.most to about 49,000"),
        ("--baseline", "bb-lqr")),
    Row("auto-drop-beyond-any-most", auto_episodes(0.002, 5000),
        (f"{S}:6", "a drop of 0.002", "within most: 5,000 episodes", "more than detect.most may be (100,000)",
         "detect a larger drop"), ("--baseline", "bb-lqr")),
]


@pytest.mark.parametrize("row", AUTO_ROWS, ids=[r.id for r in AUTO_ROWS])
def test_an_auto_episode_count_that_cannot_reach_its_drop_stops_the_run(project, monkeypatch, row):
    test_a_hostile_input_stops_the_run_with_one_located_message(project, monkeypatch, row)


def test_an_auto_episode_count_within_most_is_planned(tmp_path, host):
    from simgate.paired import episodes_for
    from simgate.scenarios.expand import load_cases

    needed = episodes_for(0.2, 0.9, 0.3, 0.025)
    (tmp_path / "s").mkdir()
    for most, fits in ((needed, True), (needed - 25, False)):
        text = SCENARIO.replace("episodes: 4\n", f"episodes: auto\ndetect:\n  drop: 0.2\n  most: {most}\n")
        (tmp_path / "s" / "flat.yaml").write_text(text)
        args = (tmp_path / "s", tmp_path, host.registries, ["balancebot-lqr"], [])
        if fits:
            [case] = load_cases(*args, baselines=["balancebot-lqr"])
            assert case.episodes == needed
        else:
            with pytest.raises(SimgateError, match=f"s/flat.yaml:6: detect: a drop of 0.2 .* within most: {most} "):
                load_cases(*args, baselines=["balancebot-lqr"])


def test_an_inconclusive_envelope_advises_raising_the_search_budget_not_episodes():
    from types import SimpleNamespace

    from simgate.reporting.message import extension_advice

    case = SimpleNamespace(sequential=None, search={"budget": 90}, source=S, episodes=4)
    requirement = lambda kind, outcome: SimpleNamespace(kind=kind, outcome=outcome)  # noqa: E731
    result = SimpleNamespace(case=case, episodes=4, requirements=[requirement("success_rate", "PASS"),
                                                                   requirement("holds_inside_envelope", "INCONCLUSIVE")])
    advice = extension_advice(result)
    assert "raise search.budget (now 90)" in advice and "'episodes'" not in advice


def test_robot_velocity_tracking_without_a_command_in_the_contract_is_refused(tmp_path, host):
    """Success measured against a command the policy is never given would fail every episode."""
    from simgate.robots.env import MjcfEnv
    from simgate.robots.load import read_robot

    path = _robot_folder(tmp_path, _ROBOT_YAML.replace("terminate: {base_height_below: 0.1}",
                                                       "terminate: {base_height_below: 0.1}\nsuccess: {velocity_tracking: 0.2}"))
    spec = host.registries.policies.get("quadruped-robust-contract")
    text = (Path(__file__).resolve().parent.parent / "policies" / "quadruped" / "contract.yaml").read_text()
    start, end = text.index("  - term: velocity_commands"), text.index("  - {term: gait_phase")
    (tmp_path / "contract.yaml").write_text(text[:start] + text[end:])
    from simgate.robots.load import contract_file

    with pytest.raises(SimgateError, match=r"robot.yaml:\d+: success.velocity_tracking measures against the policy's "
                                           r"velocity command.*no velocity_commands term"):
        MjcfEnv(read_robot(path, "envs/walker/robot.yaml"), contract_file(tmp_path / "contract.yaml", "contract.yaml"))
    assert spec.contract is not None
