"""Counterexamples inside the envelope, shrunk toward nominal with hypothesis.

A counterexample is a failing row (params, episode index) inside the envelope, every axis not in
the envelope at nominal. Each is shrunk by hypothesis on an integer encoding: per varied axis a
step count k in [0, STEPS] along the segment from nominal (k = 0) to the row's value
(k = STEPS), and the episode index as an integer in [0, index]. Hypothesis shrinks integers
toward 0, so the shrunk row is the one closest to nominal (and to episode 0) it could find that
still fails; every row it tries lies in the box between nominal and the found row, so inside
the envelope.

Hypothesis starts from the found row: its choice sequence is put in an in-memory database's
secondary corpus (an exact hit in the primary corpus is taken as already shrunk and not shrunk
again), only the reuse and shrink phases run, and its random generator is seeded from the
case's seed (a database and ``derandomize`` exclude each other), so the same search shrinks the
same way every time. Each try is one episode of the search's budget; once a counterexample's
share is spent, untried rows count as not failing and hypothesis stops improving.
"""

from __future__ import annotations

import numpy as np

from simgate.search import design
from simgate.seeds import derived_seed

#: counterexamples shrunk at most
COUNTEREXAMPLES = 3
#: resolution of the shrink along each axis (steps from nominal to the found value)
STEPS = 32
#: most failing rows searched for (share of what is left) when no earlier stage found one
SEARCH_SHARE = 0.5


def candidates(space, log, most: int) -> list[tuple[np.ndarray, int, str]]:
    """Distinct failing rows inside the envelope, closest to nominal first (in unit-cube
    L-infinity distance, then by episode index): already the most damning."""
    seen, rows = set(), []
    for x, index, ok, mode in zip(log.X, log.index, log.success, log.mode):
        if ok or not space.inside_envelope(x[None])[0]:
            continue
        key = tuple(float(v) for v in x)
        if key in seen:
            continue
        seen.add(key)
        distance = float(np.max(np.abs(space.to_unit(x[None])[0] - space.nominal_unit)))
        rows.append((distance, int(index), key, mode))
    rows.sort()
    return [(np.array(key), index, mode) for _, index, key, mode in rows[:most]]


def find_and_shrink(space, log, budget: int, seed: int, replay=None, index_start: int = 0) -> list[dict]:
    """Up to ``COUNTEREXAMPLES`` shrunk counterexamples within ``budget`` episodes."""
    stop = log.total + budget
    found = candidates(space, log, COUNTEREXAMPLES)
    if not found and budget >= 4 and np.any(space.envelope_unit[:, 1] > space.envelope_unit[:, 0]):
        n = int(budget * SEARCH_SHARE)
        box = space.envelope_unit
        U = box[:, 0] + design.space_filling(n, space.d, design.stage_rng(seed, "counterexamples")) * (box[:, 1] - box[:, 0])
        log("counterexamples", space.to_units(U), index_start + np.arange(n))
        found = candidates(space, log, COUNTEREXAMPLES)
    out, shown = [], set()
    for k, (x, index, mode) in enumerate(found):
        share = (stop - log.total) // (len(found) - k)
        x_small, i_small, mode_small = shrink(space, log, x, index, share, _seed(seed, k))
        row = (tuple(float(v) for v in x_small), int(i_small))
        if row in shown:  # two found rows shrank to the same one
            continue
        shown.add(row)
        entry = {"params": space.params(x_small), "index": int(i_small), "mode": mode_small,
                 "shrunk_from": {"params": space.params(x), "index": int(index), "mode": mode}}
        if replay is not None:
            entry["replay"] = replay(entry["params"], entry["index"])
        out.append(entry)
    return out


#: points tried at once on the segment from nominal to a found row, before hypothesis shrinks
SEGMENT = 7


def _along_segment(space, log, x0: np.ndarray, index: int, most: int) -> np.ndarray:
    """The failing row nearest nominal among ``most`` evenly spaced points of the segment from
    nominal to ``x0`` (same episode index), run as one batch: a shrink in one step of the
    engine where hypothesis, trying one row at a time, would spend as many episodes on it."""
    if most < 1:
        return x0
    t = np.arange(1, most + 1) / (most + 1)
    X = space.snap(space.nominal[None] + t[:, None] * (x0 - space.nominal)[None])
    ok = log("counterexamples", X, [index] * len(X)).success  # only rows new to the search cost
    failing = [x for x, good in zip(X, ok) if not good]
    return failing[0] if failing else x0


def _seed(seed: int, k: int) -> int:
    """The seed of the k-th counterexample's shrink (hypothesis takes an int seed, not a Generator)."""
    return derived_seed("simgate-shrink", seed, k)


def shrink(space, log, x0: np.ndarray, index0: int, budget: int, seed: int) -> tuple[np.ndarray, int, str]:
    """The smallest failing row hypothesis finds between nominal and ``x0`` (episode index in
    [0, index0]), trying at most ``budget`` new rows; ``x0`` itself if nothing smaller fails."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import strategies as st
    from hypothesis.database import InMemoryExampleDatabase, choices_to_bytes

    nominal = space.nominal
    stop = log.total + max(budget, 0)
    x0 = _along_segment(space, log, x0, index0, min(SEGMENT, stop - log.total))
    varied = [j for j in range(space.d) if x0[j] != nominal[j]]

    def row(choice) -> tuple[np.ndarray, int]:
        x = nominal.copy()
        for j, k in zip(varied, choice[:-1]):
            x[j] = nominal[j] + (k / STEPS) * (x0[j] - nominal[j])
        return space.snap(x[None])[0], int(choice[-1])

    def fails(choice) -> bool:
        x, index = row(choice)
        if log.costs(x, index) and log.total >= stop:
            return False  # out of budget: an untried row counts as not failing
        return not bool(log("counterexamples", x[None], [index]).success[0])

    strategy = st.tuples(*[st.integers(0, STEPS) for _ in varied], st.integers(0, int(index0)))
    key = b"simgate-counterexample"
    database = InMemoryExampleDatabase()
    database.save(key + b".secondary", choices_to_bytes(tuple([STEPS] * len(varied) + [int(index0)])))
    smallest: list = []

    class Found(Exception):
        pass

    @settings(database=database, phases=[Phase.reuse, Phase.shrink], max_examples=10, deadline=None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False, verbosity=Verbosity.quiet,
              print_blob=False)
    @given(strategy)
    def test(choice):
        if fails(choice):
            smallest[:] = [choice]
            raise Found

    # a database needs derandomize off; the seed keeps the shrink deterministic (hypothesis.seed
    # would drop the database, so it is set the way the decorator records it)
    test._hypothesis_internal_database_key = key
    test._hypothesis_internal_use_seed = seed
    try:
        test()
    except Found:
        pass
    if not smallest:  # the found row no longer fails: cannot happen for a deterministic row
        x, index = space.snap(x0[None])[0], int(index0)
    else:
        x, index = row(smallest[0])
    out = log("counterexamples", x[None], [index])  # already run: costs nothing
    return x, index, out.mode[0]
