"""A search case's search: its space from the case's rig, its seed from the case, its rows run
through the rig (:class:`simgate.rig.CaseRig`), its counterexamples replayable by command."""

from __future__ import annotations

from simgate.commands import row_command
from simgate.search import space as spaces
from simgate.search.evaluate import Evaluator
from simgate.search.run import run_search
from simgate.seeds import derived_seed


def search_seed(case) -> int:
    """The seed of the case's search (:func:`simgate.seeds.derived_seed` of the case's seed,
    scenario and matrix point; the policy is not in it, so every policy meets the same search)."""
    return derived_seed(case.seed, case.scenario, case.point, "search")


def run_search_case(case, host, rig):
    """The case's search (:mod:`simgate.search`) on its rig's engine, its rows cached per episode
    beside the case's own and computed through :meth:`simgate.rig.CaseRig.episodes` (so on the
    cluster where the rig has one). Returns the search dict and the Evaluator."""

    engine = rig.engine
    space = spaces.from_case(case, rig.perturbations, engine.nominal.opt.timestep, engine.control_dt)
    evaluator = Evaluator(case, engine, space, classify=host.classify, rig=rig)
    found = run_search(space, evaluator, search_seed(case),
                       replay=lambda params, index: row_command(case.id, index, params))
    return found, evaluator
