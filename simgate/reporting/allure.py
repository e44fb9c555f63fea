"""The only module that imports allure. Without allure-pytest installed every call is a no-op."""

from __future__ import annotations

import json


def _allure():
    try:
        import allure
    except ImportError:
        return None
    return allure


def report_case(result) -> None:
    allure = _allure()
    if allure is None:
        return
    case = result.case
    allure.dynamic.epic(case.env)
    allure.dynamic.feature(case.scenario.split(".")[0])
    allure.dynamic.story(case.scenario)
    allure.dynamic.label("scenario", case.scenario)
    allure.dynamic.label("env", case.env)
    allure.dynamic.label("policy", case.policy)
    allure.dynamic.tag(result.outcome)
    allure.dynamic.parameter("simgate_case", case.id, mode=allure.parameter_mode.HIDDEN)
    allure.dynamic.parameter("policy", case.policy)
    for name, value in case.point.items():
        allure.dynamic.parameter(name, value)
    for i, p in enumerate(case.perturbations):
        allure.dynamic.parameter(f"perturbation {i}: {p['kind']}", json.dumps(p["params"], sort_keys=True))
    for mode, count in result.failure_modes.items():
        allure.dynamic.label("failure_mode", mode)
    allure.attach(json.dumps(result.to_dict(), indent=1, sort_keys=True), name="metrics.json",
                  attachment_type=allure.attachment_type.JSON)
    if result.table:
        allure.attach(_csv(result.table), name="episodes.csv", attachment_type=allure.attachment_type.CSV)


def _csv(table: dict[str, list]) -> str:
    names = list(table)
    rows = [",".join(names)]
    for i in range(len(table[names[0]])):
        rows.append(",".join("" if table[n][i] is None else str(table[n][i]) for n in names))
    return "\n".join(rows) + "\n"
