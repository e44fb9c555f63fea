"""What an engine returns: one Episode record per episode plus per-step arrays."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

#: episode-ending reasons that the engine itself detects, defined in a leaf the verdict reads too
from simgate.outcomes import DIVERGED, POLICY_ERROR  # noqa: F401 (re-exported)


@dataclasses.dataclass
class Episode:
    index: int
    seed: int  # the 128-bit episode entropy the episode's generators came from
    success: bool
    length: int  # control steps actually run
    ret: float
    progress: float
    terminated: str | None  # why it ended early: "fell", "diverged", "policy_error", ...
    message: str | None  # the detail behind a termination (exception text, warning)
    mean_abs_torque: np.ndarray  # per actuator, over every physics step, N·m (N for slides)
    peak_abs_torque: np.ndarray
    step_hashes: np.ndarray  # uint64 per control step, of the full integration state
    actions: np.ndarray  # (length, n_act) as commanded, before latency or a motor dropout
    work: float = 0.0  # J: the actuators' absolute mechanical work, sum of |force x velocity| dt
    mass: float = 0.0  # kg: the robot and what it carries, as this episode's model has it
    signals: dict[str, float] = dataclasses.field(default_factory=dict)  # env signals, mean per control step
    #: env signals, largest value at a control step (an e-stop flag, a contact force: safety limits)
    signal_peaks: dict[str, float] = dataclasses.field(default_factory=dict)
    #: per actuator, the largest |velocity| of what it drives over every physics step (rad/s, m/s
    #: for slides): the actuator's velocity over its gear, the joint's for a joint actuator
    peak_joint_speed: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    saturation: float = 0.0  # share of physics steps with an actuator at its force limit
    at_stops: float = 0.0  # share of control steps with a limited joint at its stop
    nondeterministic: bool = False  # a re-run of this episode differed (set by the determinism check)
    overspeed: bool = False  # a joint exceeded the case's max_joint_speed (set by the runner, verdict's rule)
    failure_mode: str | None = None  # filled by classification for failed episodes

    def reproduced_by(self, again: "Episode") -> bool:
        """Whether a re-run of this episode gave the same trajectory, step for step."""
        return self.length == again.length and np.array_equal(self.step_hashes, again.step_hashes)

    @property
    def state_hash(self) -> str:
        return hashlib.sha256(self.step_hashes.tobytes()).hexdigest()


@dataclasses.dataclass
class Rollouts:
    episodes: list[Episode]
    joint_names: list[str]
    control_dt: float
    n_steps: int  # the horizon in control steps
    progress_unit: str = ""  # what Episode.progress counts: "m" for distance travelled

    @property
    def n(self) -> int:
        return len(self.episodes)

    def column(self, attribute: str) -> np.ndarray:
        return np.array([getattr(e, attribute) for e in self.episodes])
