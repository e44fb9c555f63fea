"""The terminal's result table: 100 columns by default, the full table with -v."""

from simgate.reporting.summary import table_lines
from simgate.verdict import SUCCESS_RATE

LONG = "quadruped_slippery_sensitivity-friction=0.35-payload=1.5-latency=0.04-quadruped-robust-onnx"


def record(cid, outcome="PASS", modes=None):
    return {"case": {"id": cid, "gate": True}, "outcome": outcome, "failure_modes": modes or {},
            "requirements": [{"kind": SUCCESS_RATE, "observed": "94/100 (94.0%)", "outcome": outcome,
                              "numbers": {"lower": 0.885, "upper": 0.97}}],
            "metrics": {"mean_abs_torque[wheel]": 0.0286, "peak_abs_torque[wheel]": 0.298}}


RESULTS = {LONG: record(LONG, "FAIL", {"timeout": 34, "fell": 12, "overspeed": 3, "impact": 1}),
           "pushes-push_n=5-balancebot-lqr": record("pushes-push_n=5-balancebot-lqr")}


def test_the_default_table_fits_100_columns_and_keeps_both_ends_of_a_case_id():
    lines = table_lines(RESULTS, list(RESULTS))
    assert max(len(line) for line in lines) <= 100
    assert "mean|τ|" not in lines[0] and "verdict" in lines[0]
    row = next(line for line in lines if line.startswith("quadruped_slippery"))
    assert "…" in row and row.split()[0].endswith("quadruped-robust-onnx")  # the policy stays readable
    assert row.rstrip().endswith("FAIL")
    assert any(line.startswith("pushes-push_n=5-balancebot-lqr  ") for line in lines)  # short ids whole
    assert "timeout:34,fell:12,over…" in row  # the most frequent modes first
    assert "-v" in lines[-1]


def test_verbose_shows_the_full_table():
    lines = table_lines(RESULTS, list(RESULTS), verbose=True)
    assert "mean|τ|" in lines[0] and "peak|τ|" in lines[0]
    assert any(line.startswith(LONG + " ") for line in lines)
    assert any("timeout:34,fell:12,overspeed:3,impact:1" in line for line in lines)
    assert max(len(line) for line in lines) > 100


def test_a_narrower_width_is_kept_too():
    assert max(len(line) for line in table_lines(RESULTS, list(RESULTS), width=60)) <= 60


def test_the_baseline_s_own_successes_are_in_the_table():
    with_baseline = record("flat-walker")
    with_baseline["requirements"].append({"kind": "not_worse", "observed": "...", "outcome": "PASS",
                                          "numbers": {"n": 100, "baseline_rate": 0.89}})
    lines = table_lines({"flat-walker": with_baseline, **RESULTS}, ["flat-walker", *RESULTS])
    assert "baseline" in lines[0]
    row = next(line for line in lines if line.startswith("flat-walker "))
    assert row.split()[1:4] == ["94/100", "p≥0.885", "89/100"]
    assert next(line for line in lines if line.startswith("pushes-")).split()[3] == "-"  # no baseline
