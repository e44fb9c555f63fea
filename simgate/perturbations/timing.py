"""Latencies and rates must land on the simulation's clock: checks that say which values would."""

from __future__ import annotations

import math


def whole_periods(seconds: float, period: float) -> int | None:
    """``seconds`` as a count of ``period``, or None when it is not a whole number of them."""
    count = seconds / period
    # float noise only: 0.05 / 0.002 is 25.000000000000004
    return round(count) if abs(count - round(count)) < 1e-6 else None


def not_whole_message(param: str, ms: float, period: float, what: str) -> str:
    """Why ``ms`` is refused, with the two nearest values that would work."""
    count = ms / 1000 / period
    below, above = (n * period * 1000 for n in (math.floor(count), math.ceil(count)))
    return (f"{param} should be a whole number of {what} of {period * 1000:g} ms, received {ms:g}; "
            f"the nearest valid values are {below:g} and {above:g}")
