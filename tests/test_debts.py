"""Debts of issue 23, each closed once: one seed derivation, one count of a search's budget, one
parse of each YAML text per process, one non-inferiority statistic, the overview's helpers used
by the README's verdict tables, and contract.py's claim about test ids exact."""

from __future__ import annotations

import ast
import importlib.util
from collections import Counter, OrderedDict
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]


# -- seeds: one helper --------------------------------------------------------------------------


def test_no_module_of_the_search_hashes_its_own_seeds():
    hashing = []
    for path in sorted((REPO / "simgate" / "search").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            hashing += [f"{path.name}:{node.lineno}" for name in names if name.split(".")[0] == "hashlib"]
    assert not hashing, f"seeds derived outside simgate.seeds: {hashing}"


def test_every_search_seed_comes_from_the_one_seed_helper():
    from simgate import seeds
    from simgate.search import counterexamples, design
    from simgate.search.case import search_seed

    case = SimpleNamespace(seed=7, scenario="quadruped_search", point={"payload": 0.2}, policy="any")
    seed = search_seed(case)
    assert seed == seeds.derived_seed(7, "quadruped_search", {"payload": 0.2}, "search")
    assert np.array_equal(design.stage_rng(seed, "joint").random(8),
                          seeds.derived_rng("simgate-search", seed, "joint").random(8))
    assert counterexamples._seed(seed, 2) == seeds.derived_seed("simgate-shrink", seed, 2)
    # the episodes' and the cases' own seeds are the same derivation (their values unchanged)
    assert seeds.episode_entropy(1, "flat", {}, 0) == seeds.derived_seed(1, "flat", {}, 0)
    assert np.array_equal(seeds.case_rng(1, "flat", {}, "feasibility").random(4),
                          seeds.derived_rng(1, "flat", {}, "feasibility").random(4))


# -- the search: one count of its budget --------------------------------------------------------


class _Rig:
    """A CaseRig's episodes without an engine: success falls with the first axis."""

    def __init__(self):
        self.computed, self.cached, self.engines, self.cache_note = 0, 0, Counter(), None

    def episodes(self, indices, rows):
        self.computed += len(indices)
        self.engines["fake"] += len(indices)
        return [SimpleNamespace(success=row["apply_pushes.force"] < 8 + (index % 5), mean_abs_torque=[1.0],
                                terminated="fell") for index, row in zip(indices, rows)]


def test_the_search_budget_has_one_count():
    from simgate.search.evaluate import Evaluator
    from simgate.search.run import run_search
    from simgate.search.space import Axis, Space

    axes = (Axis("apply_pushes.force", "apply_pushes", "force", 0, 1.0, 30.0, 1.0, (1.0, 10.0), "N"),
            Axis("scale_friction.sliding", "scale_friction", "sliding", 1, 0.2, 1.0, 1.0, None, "×"))
    space = Space(axes, 120, 0.75, True, 0.05, 2)
    rig = _Rig()
    evaluator = Evaluator(SimpleNamespace(id="c"), None, space, rig=rig)
    found = run_search(space, evaluator, seed=4)
    # the search's log is the count: every row new to the search ran once, and nothing else
    # (the Evaluator keeps outcomes, not a second tally of the budget)
    assert 0 < found["episodes"]["total"] <= space.budget
    assert found["episodes"]["total"] == rig.computed == len(evaluator.memo)
    assert not hasattr(evaluator, "episodes") and not hasattr(evaluator, "budget")


# -- YAML: one parse per text per process -------------------------------------------------------


def test_each_yaml_text_is_parsed_once_per_process_and_each_reader_gets_its_own_copy(tmp_path, monkeypatch):
    from simgate.policies.manifest import read_manifest
    from simgate.yamlfile import lines

    monkeypatch.setattr(lines, "_PARSED", OrderedDict(), raising=False)  # nothing parsed before
    scans: list[str] = []

    class Counting(lines._LOADER):  # every scan of a text builds one loader on it
        def __init__(self, stream):
            scans.append(stream)
            super().__init__(stream)

    monkeypatch.setattr(lines, "_LOADER", Counting)
    text = "name: s\nvalues: [1, 2]\nnested: {a: {b: 3}}\n"
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)  # the same text under another name
    (tmp_path / "c.yaml").write_text("other: 1\n")
    first, first_lines = lines.read(tmp_path / "a.yaml", "a.yaml")
    for name in ("a.yaml", "b.yaml", "c.yaml", "a.yaml"):
        lines.read(tmp_path / name, name)
    assert len(scans) == 2, f"{len(scans)} scans of 2 distinct texts"

    # a caller that changes what it got changes nobody else's copy
    first["values"].append(99)
    first["nested"]["a"]["b"] = "changed"
    first_lines[("values",)] = 1000
    again, again_lines = lines.read(tmp_path / "b.yaml", "b.yaml")
    assert again == {"name": "s", "values": [1, 2], "nested": {"a": {"b": 3}}}
    assert again_lines[("values",)] == 2

    # the quadruped's two policies name one contract file: read for each, parsed once
    scans.clear()
    manifest = REPO / "policies" / "quadruped" / "manifest.yaml"
    read_manifest(manifest, "policies/quadruped/manifest.yaml")
    read_manifest(manifest, "policies/quadruped/manifest.yaml")
    parsed = {Path(p).name for p in (manifest, manifest.parent / "contract.yaml")}
    assert len(scans) == len(parsed), f"{len(scans)} scans of {len(parsed)} files"


# -- paired: one non-inferiority statistic ------------------------------------------------------


def test_the_noninferiority_statistic_has_one_implementation(monkeypatch):
    from simgate import paired

    real, calls = paired._score_z, []
    monkeypatch.setattr(paired, "_score_z", lambda *args: calls.append(args) or real(*args))
    z, p = paired.noninferiority(3, 7, 120, 0.05)
    assert calls, "noninferiority computes its statistic apart from _score_z"
    assert z == float(real(3, 7, 120, 0.05)) and 0 < p < 1


# -- the README's verdict tables read records as the overview does ------------------------------


def test_the_verdict_tables_use_the_overviews_helpers():
    from simgate.reporting import overview

    spec = importlib.util.spec_from_file_location("verdict_tables", REPO / "docs" / "verdict_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    for name in ("case_key", "success_of", "ranked_modes", "confirmed_regressions"):
        assert getattr(tables, name, None) is getattr(overview, name), name
    record = {"case": {"id": "s-x=1-p", "policy": "p", "env": "e"}, "outcome": "FAIL", "episodes": 10,
              "requirements": [{"kind": "success_rate", "numbers": {"k": 6, "n": 10}}],
              "failure_modes": {"slipped": 2, "fell": 2, "tipped": 1}}
    assert tables.cell(record) == "FAIL 6/10 (fell 2, slipped 2)"


# -- contract.py says what the controller parses -------------------------------------------------


def test_the_contract_says_which_test_ids_the_controller_parses():
    from simgate import contract, controller

    doc = contract.__doc__
    assert "never from parsing a test id" not in doc
    assert "_param_id" in doc and hasattr(controller, "_param_id")
    # what the docstring says it reads: the case id inside test_scenario[...], nothing else
    assert controller._param_id("suites/test_scenarios.py::test_scenario[flat-balancebot-lqr]") == "flat-balancebot-lqr"
    assert controller._param_id("suites/test_scenarios.py::test_other") is None
