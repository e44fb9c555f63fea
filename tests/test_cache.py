"""The episode cache (issue 12, item 4): keyed on every input an episode depends on, every entry
verified before use, never the reason a case fails, safe for two runs sharing one folder."""

import dataclasses
import json
import multiprocessing
import os
import shutil
import textwrap
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

from simgate import cache
from simgate.cache import EpisodeCache, source_digest
from simgate.scenarios.case import Case

REPO = Path(__file__).resolve().parents[1]
FRICTION = {"kind": "scale_friction", "params": {"sliding": 0.7}}


def make_case(**kw) -> Case:
    base = dict(id="cache", scenario="cache", source="cache.yaml", env="balancebot", policy="balancebot-lqr", point={},
                perturbations=(FRICTION,), episodes=6, horizon=1.0, seed=11, alpha=0.05, determinism_episodes=2,
                thresholds={"min_success_rate": 0.5})
    base.update(kw)
    return Case(**base)


@pytest.fixture(scope="module")
def host():
    """A host of its own: tests register copies of policies in it."""
    import sys

    from simgate.plugin_manager import Host

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return Host(project_plugins=["envs", "policies", "plugins.stuck"], autoload=False)


def run(host, case, cache_dir, engine="auto"):
    from simgate.runner import run_case

    result = run_case(case, host, engine=engine, cache_dir=cache_dir)
    assert result.error is None, result.error
    return result


def results(result) -> str:
    """What a case decided and measured, NaN equal to NaN."""
    return json.dumps({"outcome": result.outcome, "table": result.table, "failure_modes": result.failure_modes},
                      sort_keys=True)


def parts(host, case, engine="auto"):
    """(env, spec, policy, runner) of a case, as run_case builds them."""
    from simgate.engine import make_engine
    from simgate.runner import build_env, perturbations_for

    regs = host.registries
    env = build_env(regs.envs.get(case.env))
    spec = regs.policies.get(case.policy)
    policy = spec.load()
    return env, spec, policy, make_engine(env, policy, perturbations_for(case, regs), spec.action_size, engine)


def key_of(host, case, root) -> str:
    from simgate.runner import episode_cache

    env, spec, policy, runner = parts(host, case)
    made = episode_cache(root, case, env, runner, spec, policy)
    assert made, getattr(made, "reason", None)
    return made.key(0)


def source_for(host, case, root, engine="auto"):
    from simgate.runner import EpisodeSource, episode_cache

    env, spec, policy, runner = parts(host, case, engine)
    return EpisodeSource(runner, case, env, episode_cache(root, case, env, runner, spec, policy))


def same_episode(a, b) -> bool:
    return (a.index == b.index and a.seed == b.seed and a.success == b.success and a.length == b.length
            and np.array_equal(a.step_hashes, b.step_hashes) and np.array_equal(a.actions, b.actions)
            and a.signals == b.signals and a.terminated == b.terminated)


# --------------------------------------------------------------------------- served from the cache


def test_a_second_run_is_served_from_the_cache_and_says_which_engine_computed_it(host, tmp_path):
    case = make_case()
    first = run(host, case, tmp_path, engine="reference")
    assert (first.episodes_run, first.episodes_cached) == (12, 0)  # its 6 and its benign arm's 6 (friction off)
    second = run(host, case, tmp_path, engine="batched")
    assert (second.episodes_run, second.episodes_cached) == (0, 12)
    assert results(second) == results(first)
    source = source_for(host, case, tmp_path, engine="batched")
    source.get(range(8))  # 6 cached (computed by the reference engine), 2 new by the batched one
    assert (source.computed, source.cached) == (2, 6)
    assert dict(source.engines) == {"reference": 6, "batched": 2}
    again = source_for(host, case, tmp_path, engine="reference")
    again.get(range(8))
    assert again.computed == 0 and dict(again.engines) == {"reference": 6, "batched": 2}  # kept in the entry


def test_a_scripted_policys_data_file_is_in_the_key_end_to_end(host, tmp_path, monkeypatch):
    """The issue's case: editing gains.json of a scripted policy must not PASS from the cache."""
    from simgate.policies.spec import PolicySpec

    name = f"lqr_copy_{uuid.uuid4().hex[:8]}"
    shutil.copytree(REPO / "policies" / "balancebot_lqr", tmp_path / "code" / name)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    host.registries.policies.add(name, PolicySpec(name=name, env="balancebot", format="scripted",
                                                  observation_size=4, action_size=1,
                                                  entry=f"{name}.controller:make_policy"))
    case = make_case(policy=name, perturbations=())
    store = tmp_path / "cache"
    good = run(host, case, store)
    assert good.episodes_run == 6 and run(host, case, store).episodes_run == 0
    gains = tmp_path / "code" / name / "gains.json"
    data = json.loads(gains.read_text())
    data["nominal"]["K"] = [0.0 for _ in data["nominal"]["K"]]  # no feedback: the robot falls
    gains.write_text(json.dumps(data))
    edited = run(host, case, store)
    assert (edited.episodes_run, edited.episodes_cached) == (6, 0)
    assert results(edited) != results(good)


def test_every_input_is_in_the_key(host, tmp_path):
    case = make_case()
    base = key_of(host, case, tmp_path)
    assert key_of(host, case, tmp_path) == base
    for changed in (make_case(horizon=1.5), make_case(seed=12), make_case(point={"x": 1}), make_case(perturbations=()),
                    make_case(perturbations=({"kind": "scale_friction", "params": {"sliding": 0.6}},)),
                    make_case(policy="balancebot-lqr-onnx")):
        assert key_of(host, changed, tmp_path) != base, changed


def test_the_package_of_a_scripted_policy_is_hashed_data_files_included(host, tmp_path, monkeypatch):
    name = f"lqr_key_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    shutil.copytree(REPO / "policies" / "balancebot_lqr", package)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = dataclasses.replace(host.registries.policies.get("balancebot-lqr"), name=name,
                               entry=f"{name}.controller:make_policy")
    policy = spec.load()

    def inputs():
        return json.dumps(cache.policy_inputs(spec, policy), sort_keys=True)

    before = inputs()
    assert inputs() == before
    gains = package / "gains.json"
    gains.write_text(gains.read_text().replace("\n", " \n", 1))  # a byte of a data file
    after_gains = inputs()
    assert after_gains != before
    (package / "notes.txt").write_text("a new file the controller might read")
    assert inputs() != after_gains
    # what cannot change behaviour is not hashed
    after_new = inputs()
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (package / ".swp").write_text("editor")
    assert inputs() == after_new
    # a files: list the manifest declares is hashed too
    extra = tmp_path / "table.csv"
    extra.write_text("1,2\n")

    listed = dataclasses.replace(spec, files=(extra,))
    one = cache.policy_inputs(listed, policy)
    extra.write_text("1,3\n")
    assert cache.policy_inputs(listed, policy) != one


def test_a_weights_file_is_hashed_from_its_bytes_not_the_manifest(host, tmp_path):
    spec = host.registries.policies.get("balancebot-lqr-onnx")
    copy = tmp_path / "lqr.onnx"
    shutil.copy(spec.file, copy)
    moved = dataclasses.replace(spec, file=copy)  # the manifest's sha256 is unchanged
    before = cache.policy_inputs(moved, None)
    assert before["file"] == spec.sha256
    with open(copy, "ab") as handle:
        handle.write(b"\0")
    assert cache.policy_inputs(moved, None)["file"] != before["file"]


def test_a_perturbations_code_is_in_the_key(host, tmp_path, monkeypatch):
    from simgate.perturbations.scale_friction import ScaleFriction

    name = f"perts_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    source = tmp_path / name / "slippery.py"
    source.write_text(textwrap.dedent("""
        from simgate.perturbations.scale_friction import ScaleFriction

        class Slippery(ScaleFriction):
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module(f"{name}.slippery")
    pert = module.Slippery(ScaleFriction.Params(sliding=0.7))
    case = make_case()
    env, spec, policy, runner = parts(host, case)

    def key(perturbations):
        return EpisodeCache(tmp_path, cache.context(case, env, runner.nominal, spec, policy, perturbations)).key(0)

    before = key([pert])
    assert key([pert]) == before != key([ScaleFriction(ScaleFriction.Params(sliding=0.7))])
    source.write_text(source.read_text() + "    scale = 2  # an edit\n")
    assert key([pert]) != before
    before = key([pert])
    (tmp_path / name / "helper.json").write_text("{}")  # the package, data files included
    assert key([pert]) != before


def test_simgates_own_source_is_in_the_key(host, tmp_path, monkeypatch):
    case = make_case()
    env, spec, policy, runner = parts(host, case)
    before = EpisodeCache(tmp_path, cache.context(case, env, runner.nominal, spec, policy, [])).key(0)
    monkeypatch.setattr(cache, "simgate_digest", lambda: "an edited simgate")
    assert EpisodeCache(tmp_path, cache.context(case, env, runner.nominal, spec, policy, [])).key(0) != before


def test_code_that_cannot_be_hashed_turns_the_cache_off_not_weaker(host, tmp_path):
    from simgate.perturbations.scale_friction import ScaleFriction
    from simgate.runner import EpisodeSource, episode_cache

    class Interactive(ScaleFriction):
        pass

    Interactive.__module__ = "__main__"  # as if typed at a prompt
    case = make_case()
    env, spec, policy, runner = parts(host, case)
    runner.ref.perturbations[0] = Interactive(ScaleFriction.Params(sliding=0.7))
    refused = episode_cache(tmp_path, case, env, runner, spec, policy)
    assert not refused and refused.get(0) is None and "__main__" in refused.reason
    source = EpisodeSource(runner, case, env, refused)
    source.get(range(3))
    assert source.computed == 3 and source.cache_note and not list(tmp_path.rglob("*.npz"))
    with pytest.raises(cache.Undigestable):
        cache.class_digests(Interactive)
    with pytest.raises(cache.Undigestable):
        cache.class_digests(dict)


# --------------------------------------------------------------------------- source digests


def test_source_digest_is_independent_of_creation_order_and_sees_every_data_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root, names in ((a, ["x.py", "sub/w.npz", "y.json"]), (b, ["y.json", "x.py", "sub/w.npz"])):
        for name in names:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(name)
    assert source_digest(a) == source_digest(b)
    (b / "sub" / "w.npz").write_text("other")
    assert source_digest(a) != source_digest(b)
    (b / "sub" / "w.npz").write_text("sub/w.npz")
    assert source_digest(a) == source_digest(b)
    (b / "x.py").rename(b / "z.py")  # same bytes under another name
    assert source_digest(a) != source_digest(b)
    assert source_digest(a / "x.py") != source_digest(a / "y.json")


# --------------------------------------------------------------------------- entries verified


def _rewrite(path: Path, **changes) -> None:
    with np.load(path, allow_pickle=False) as stored:
        fields = {name: stored[name] for name in stored.files}
    fields.update(changes)
    np.savez(path, **fields)


def _meta_success_flipped(path: Path) -> None:
    with np.load(path, allow_pickle=False) as stored:
        meta = json.loads(str(stored["meta"]))
    meta["success"] = not meta["success"]
    _rewrite(path, meta=np.array(json.dumps(meta, sort_keys=True)))


def _array_byte_flipped(path: Path) -> None:
    with np.load(path, allow_pickle=False) as stored:
        actions = stored["actions"].copy()
    actions.view(np.uint8)[3] ^= 1
    _rewrite(path, actions=actions)


def _raw_byte_flipped(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _schema(version: int):
    return lambda path: _rewrite(path, schema=np.array(version))


DAMAGE = {
    "array byte flipped, digest kept": _array_byte_flipped,
    "success flipped in meta, digest kept": _meta_success_flipped,
    "raw byte flipped": _raw_byte_flipped,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "zero bytes": lambda p: p.write_bytes(b""),
    "not a zip": lambda p: p.write_text("this is not an npz file\n"),
    "older schema": _schema(1),
    "newer schema": _schema(99),
    "digest missing": lambda p: (lambda fields: np.savez(p, **fields))(
        {k: v for k, v in np.load(p, allow_pickle=False).items() if k != "digest"}),
    "extra pickled field": lambda p: _rewrite(p, extra=np.array([{"a": 1}], dtype=object)),
}


@pytest.fixture(scope="module")
def fresh(host, tmp_path_factory):
    """The case's episodes computed with no cache, and a cache folder holding them."""
    root = tmp_path_factory.mktemp("filled")
    source = source_for(host, make_case(), root)
    episodes = source.get(range(4))
    assert source.computed == 4
    return root, episodes


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_or_tampered_entry_is_recomputed_and_replaced(host, fresh, tmp_path, damage):
    filled, episodes = fresh
    root = tmp_path / "cache"
    shutil.copytree(filled, root)
    source = source_for(host, make_case(), root)
    path = source.cache.path(2)
    DAMAGE[damage](path)
    assert source.cache.load(2) is None  # never trusted, never raised
    got = source.get(range(4))
    assert (source.computed, source.cached) == (1, 3)
    assert all(same_episode(a, b) for a, b in zip(got, episodes))
    again = source_for(host, make_case(), root)
    assert all(same_episode(a, b) for a, b in zip(again.get(range(4)), episodes)) and again.computed == 0


def test_an_entry_under_another_key_is_not_used(host, fresh, tmp_path):
    filled, episodes = fresh
    root = tmp_path / "cache"
    shutil.copytree(filled, root)
    source = source_for(host, make_case(), root)
    shutil.copy(source.cache.path(1), source.cache.path(2))  # a valid entry, of another episode
    got = source.get([2])
    assert source.computed == 1 and same_episode(got[0], episodes[2])


def test_an_entry_round_trips_exactly(tmp_path):
    from simgate.engine.rollouts import Episode

    ep = Episode(index=7, seed=2**127 + 5, success=False, length=3, ret=-0.1 / 3, progress=float("nan"),
                 terminated="fell", message="why", mean_abs_torque=np.array([0.1, 1 / 3]),
                 peak_abs_torque=np.array([1.0, 2.0]), step_hashes=np.array([1, 2**64 - 1, 3], dtype=np.uint64),
                 actions=np.random.default_rng(0).standard_normal((3, 2)), work=1 / 7, mass=1.75,
                 signals={"x": 0.5}, saturation=0.25, at_stops=float("inf"))
    store = EpisodeCache(tmp_path, {"k": 1})
    store.put(ep, "reference")
    back, engine = store.load(7)
    assert engine == "reference" and same_episode(back, ep) and back.ret == ep.ret and np.isnan(back.progress)
    assert back.at_stops == float("inf") and back.work == ep.work and back.saturation == 0.25
    assert EpisodeCache(tmp_path, {"k": 2}).load(7) is None


# --------------------------------------------------------------------------- never fatal


def test_a_cache_folder_that_is_a_file_does_not_fail_the_case(host, tmp_path):
    case = make_case()
    expected = run(host, case, None)
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="cache disabled"):
        result = run(host, case, blocker)
    assert results(result) == results(expected) and result.episodes_run == 12  # with the benign arm's
    assert blocker.read_text() == "not a folder"


def test_a_read_only_cache_folder_does_not_fail_the_case(host, tmp_path):
    case = make_case()
    root = tmp_path / "cache"
    root.mkdir()
    root.chmod(0o500)
    try:
        if os.access(root, os.W_OK):
            pytest.skip("this user can write to a 0o500 folder (root)")
        with pytest.warns(RuntimeWarning, match="cache disabled"):
            result = run(host, case, root)
        assert results(result) == results(run(host, case, None))
    finally:
        root.chmod(0o700)


def test_a_failing_write_warns_once_and_stops_caching(host, tmp_path, monkeypatch):
    import errno

    calls = []

    def full(self, episode, engine="unknown"):
        calls.append(episode.index)
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path(episode.index)))

    monkeypatch.setattr(EpisodeCache, "put", full)
    source = source_for(host, make_case(), tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = source.get(range(3))
        second = source.get(range(3, 6))
    assert len(calls) == 1 and len([w for w in caught if "cache disabled" in str(w.message)]) == 1
    assert source.computed == 6 and len(first + second) == 6 and "No space left" in source.cache_note
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # -W error: still not fatal
        strict = source_for(host, make_case(), tmp_path)
        assert len(strict.get(range(2))) == 2 and strict.cache_note


# --------------------------------------------------------------------------- two runs, one folder


def _writer(root: str, rounds: int, start, failures) -> None:
    from simgate.engine.rollouts import Episode

    store = EpisodeCache(Path(root), {"shared": True})
    start.wait()
    for r in range(rounds):
        for index in range(12):
            rng = np.random.default_rng(index)
            n = 5 + index
            store.put(Episode(index=index, seed=index * 2**100, success=index % 2 == 0, length=n, ret=float(index),
                              progress=0.5, terminated=None, message=None, mean_abs_torque=rng.random(2),
                              peak_abs_torque=rng.random(2), step_hashes=rng.integers(0, 2**63, n, dtype=np.uint64),
                              actions=rng.random((n, 2)), signals={"r": 1.0}), "batched")
            if store.load(index) is None:  # a reader during the other's writes sees a whole entry
                failures.value += 1


def test_two_processes_writing_the_same_entries_leave_all_valid(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    start, failures = ctx.Event(), ctx.Value("i", 0)
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), 15, start, failures)) for _ in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0, 0]
    assert failures.value == 0
    store = EpisodeCache(tmp_path, {"shared": True})
    for index in range(12):
        episode, engine = store.load(index)
        assert episode.length == 5 + index and engine == "batched"
    assert len(list(tmp_path.rglob("*.npz"))) == 12 and not list(tmp_path.rglob(".tmp-*"))


def test_the_files_a_weights_policy_declares_are_in_its_key(host, tmp_path):
    spec = host.registries.policies.get("balancebot-lqr-onnx")
    table = tmp_path / "normalisation.json"
    table.write_text('{"mean": [0, 0, 0, 0]}')
    listed = dataclasses.replace(spec, files=(table,))
    before = cache.policy_inputs(listed, None)
    assert before != cache.policy_inputs(spec, None)
    table.write_text('{"mean": [0, 0, 0, 1]}')
    assert cache.policy_inputs(listed, None) != before
