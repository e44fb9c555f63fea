"""Issue 24.3: a candidate's regression family is planned at the level Holm runs it at."""


def test_the_family_is_planned_at_the_level_holm_runs_it_at():
    """Holm runs a candidate's family at min(0.05, every member's alpha): planning (episodes:
    auto, detectable_drop_90) at a case's own alpha would promise power the family does not give."""
    import dataclasses

    from simgate.scenarios.case import Case
    from simgate.scenarios.expand import _regression_families
    from simgate.verdict import regression_level

    def case(i, alpha, policy="cand", baseline="base", gate=True):
        return Case(id=f"s{i}-{policy}", scenario=f"s{i}", source="x.yaml", env="e", policy=policy, point={},
                    perturbations=(), episodes=100, horizon=1.0, seed=1, alpha=alpha, determinism_episodes=0,
                    thresholds={"min_success_rate": 0.9}, gate=gate, baseline=baseline)

    loose, _ = _regression_families([case(i, 0.10) for i in range(4)])
    assert {c.family_alpha for c in loose} == {0.05} and {c.regression_family for c in loose} == {4}
    assert regression_level(loose[0]) == 0.05 * 0.5 / 4  # not 0.10 * 0.5 / 4
    strict, _ = _regression_families([case(0, 0.01)] + [case(i, 0.10) for i in range(1, 4)])
    assert {regression_level(c) for c in strict} == {0.01 * 0.5 / 4}  # one strict scenario lowers them all
    # the baseline judged as a candidate is compared with itself: no family, its own level
    itself, _ = _regression_families([case(i, 0.05, policy="base") for i in range(3)])
    assert {c.regression_family for c in itself} == {1}
    informational = dataclasses.replace(case(9, 0.01), gate=False)  # not a member: does not lower the level
    mixed, _ = _regression_families([case(0, 0.10), informational])
    assert mixed[0].family_alpha == 0.05 and mixed[0].regression_family == 1
