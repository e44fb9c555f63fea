"""Properties that must hold for any input, checked with hypothesis."""

from hypothesis import given, settings
from hypothesis import strategies as st

from simgate import stats
from simgate.scenarios.case import case_id, format_value

values = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False), st.booleans(),
                   st.text("abcxyz_.", min_size=1, max_size=6))


@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=5), values, max_size=4))
def test_case_ids_have_no_characters_that_break_node_ids(point):
    cid = case_id("scen", point, "pol")
    assert not set(cid) & set(" []/\\:\n\t")
    assert cid == case_id("scen", dict(point), "pol")  # a pure function of its inputs


@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_integral_floats_print_like_ints(x):
    assert format_value(float(round(x))) == str(int(round(x)))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.data(), st.sampled_from([0.5, 0.7, 0.9, 0.95]))
def test_more_successes_never_turn_a_verdict_worse(n, data, p0):
    k = data.draw(st.integers(0, n - 1))
    rank = {stats.FAIL: 0, stats.INCONCLUSIVE: 1, stats.PASS: 2}
    a, b = stats.success_rate(k, n, p0, 0.05), stats.success_rate(k + 1, n, p0, 0.05)
    assert rank[b.outcome] >= rank[a.outcome]
    assert a.lower <= b.lower and a.upper <= b.upper
    assert not (a.outcome == stats.PASS and a.lower <= p0)  # PASS always means the bound clears p0
