"""The gate: every (scenario, matrix point, policy) must meet its scenario's thresholds."""


def test_scenario(simgate_result):
    simgate_result.check()
