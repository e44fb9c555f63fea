"""The Bode plot of a frequency-response inspection (:mod:`simgate.frequency`), from the case
record's numbers. matplotlib is imported here only, when a report is wanted."""

from __future__ import annotations

import numpy as np

from simgate.reporting.plots import png


def bode(numbers: dict) -> bytes:
    """Gain (dB) and phase (degrees) against frequency (log axis), as a PNG."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = np.asarray(numbers["frequencies"], dtype=float)
    gain = np.asarray(numbers["gain"], dtype=float)
    phase = np.asarray(numbers["phase_deg"], dtype=float)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.0, 5.0), dpi=100, sharex=True, layout="constrained")
    top.semilogx(f, 20 * np.log10(np.maximum(gain, 1e-12)), "o-", color="#2980b9")
    top.set_ylabel("gain (dB)")
    top.set_title(f"observation {numbers['channel']} → action {numbers['action']} "
                  f"(amplitude {numbers['amplitude']:g}, {numbers['cycles']} periods each)")
    top.grid(True, which="both", alpha=0.3)
    bottom.semilogx(f, phase, "o-", color="#d35400")
    bottom.set_ylabel("phase (°)")
    bottom.set_xlabel("frequency (Hz)")
    bottom.grid(True, which="both", alpha=0.3)
    return png(fig)
