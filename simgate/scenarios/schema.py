"""The scenario file format. Unknown keys are errors; so are empty values."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simgate.groupseq import LOOKS

Scalar = Union[bool, int, float, str]


class Strict(BaseModel):
    # strict: "4" is not 4 and "yes" is not true (a quoted value is a typo, not a number); an int
    # is still a float. No NaN or infinity anywhere: a NaN threshold compares false with everything.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class PerturbationEntry(Strict):
    """One ``{kind: ..., params: {...}}`` item; params are checked by the kind's own schema."""

    kind: str
    params: dict[str, Any] = Field(default_factory=dict)


class MatrixAxis(Strict):
    """A sweep: ``friction: {param: scale_friction.sliding, values: [0.4, 0.5, 1.25]}``."""

    param: str = Field(pattern=r"^[A-Za-z_][\w]*\.[A-Za-z_][\w]*$")
    values: list[Union[Scalar, list[Scalar]]] = Field(min_length=1)  # a list value is a [low, high] range


PerJoint = Union[float, dict[str, float]]


def positive_limits(value):
    """A per-joint limit (one number, or {joint: number}) must be positive: 0 would fail every episode."""
    limits = value.values() if isinstance(value, dict) else [value] if value is not None else []
    if any(limit <= 0 for limit in limits):
        raise ValueError("torque and speed limits must be positive numbers (N·m or rad/s; N or m/s for slide joints)")
    return value


#: the thresholds that make a scenario require something (the margins only qualify a baseline
#: comparison); a gating scenario needs at least one
REQUIREMENTS = ("min_success_rate", "min_successes", "max_mean_torque", "max_peak_torque", "max_p95_torque", "max_mean_power",
                "max_cost_of_transport", "max_inference_ms", "max_estop_share", "max_joint_speed", "max_contact_force",
                "deterministic")
PER_JOINT = ("max_mean_torque", "max_peak_torque", "max_p95_torque", "max_joint_speed")


class InferenceLimits(Strict):
    """Milliseconds per policy call at batch 1, one thread, warm (:mod:`simgate.latency`)."""

    p50: float | None = Field(default=None, gt=0.0)
    p99: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _some_limit(self):
        if self.p50 is None and self.p99 is None:
            raise ValueError("max_inference_ms needs p50, p99 or both (milliseconds), e.g. {p50: 2, p99: 5}")
        return self


class Thresholds(Strict):
    min_success_rate: float | None = Field(default=None, gt=0.0, le=1.0)  # 0 would pass any policy
    max_mean_torque: PerJoint | None = None
    max_peak_torque: PerJoint | None = None
    #: the 95th percentile over episodes of each joint's per-episode mean |torque| (order-statistic
    #: test: at least 59 episodes are needed to PASS)
    max_p95_torque: PerJoint | None = None
    max_mean_power: float | None = Field(default=None, gt=0.0, description="W, mean over episodes")
    max_cost_of_transport: float | None = Field(default=None, gt=0.0)
    deterministic: bool = False
    #: a pinned regression scenario (``replay:``): at least this many of its pinned episodes
    #: succeed (as many as with the policy that fixed them); decided exactly, the episodes are fixed
    min_successes: int | None = Field(default=None, gt=0)
    #: the policy's inference time (ms) measured on the case's observations: a timing, not a
    #: statistic (not seeded, never cached)
    max_inference_ms: InferenceLimits | None = None
    #: safety limits: the share of episodes reaching the env's e-stop (its ``estop`` signal;
    #: exact binomial bound), the peak |joint speed| (rad/s, m/s for slides; every physics step)
    #: and the peak normal contact force (N, the env's ``contact_force`` signal) anywhere
    max_estop_share: float | None = Field(default=None, gt=0.0, lt=1.0)
    max_joint_speed: PerJoint | None = None
    max_contact_force: float | None = Field(default=None, gt=0.0)
    #: against a baseline (--baseline): the candidate's success rate may be at most this much
    #: below the baseline's (paired non-inferiority margin δ)
    regression_margin: float = Field(default=0.05, gt=0.0, lt=1.0)
    #: against a baseline: the mean |torque| of a joint may rise by at most this share of the
    #: baseline's (paired t-test per joint)
    torque_regression_margin: float = Field(default=0.10, gt=0.0)

    @field_validator(*PER_JOINT)
    @classmethod
    def _positive(cls, value):
        return positive_limits(value)

    def requires_something(self) -> bool:
        return any(getattr(self, key) not in (None, False) for key in REQUIREMENTS)


class Classify(Strict):
    """Thresholds of the failure-mode rules (docs: README, "Failure modes")."""

    saturation_share: float = Field(default=0.2, gt=0.0, le=1.0)  # of physics steps, actuator at its limit
    stop_share: float = Field(default=0.1, gt=0.0, le=1.0)  # of control steps, a joint at its stop
    chatter_share: float = Field(default=0.6, gt=0.0, le=1.0)  # of action power in the upper half band
    chatter_min_rate: float = Field(default=0.05, ge=0.0)  # mean |Δaction| per step below which nothing chatters
    drift_bound: float = Field(default=0.3, gt=0.0)  # the env's `drift` signal (m or rad), mean per step
    slip_bound: float = Field(default=0.3, gt=0.0)  # the env's `slip` signal (m/s), mean per step
    stuck_progress: float = Field(default=0.1, ge=0.0, le=1.0)  # of the goal, alive at the horizon


class Sequential(Strict):
    """Stop the case as soon as its success requirement is decided (docs/statistics.md)."""

    method: Literal["sprt", "anytime", "group"] = "sprt"
    #: the success rate at which a good policy should pass quickly (above min_success_rate;
    #: sprt and anytime only: the group design needs none)
    p1: float | None = Field(default=None, gt=0.0, lt=1.0)
    #: false FAIL rate at p1
    beta: float = Field(default=0.10, gt=0.0, lt=0.5)
    #: episodes run between two looks (the decision itself is taken episode by episode)
    batch: int = Field(default=64, gt=0)
    #: the episodes every other requirement (torque, power, p95, the baseline comparison) is judged
    #: on, fixed before the run (default: one batch); the case runs at least this many
    min_episodes: int | None = Field(default=None, gt=0)
    #: group: the number of looks, at equal shares of ``episodes`` (simgate.groupseq)
    looks: int = Field(default=LOOKS, ge=1, le=20)

    @model_validator(mode="after")
    def _p1_where_needed(self):
        if self.method == "group":
            if self.p1 is not None or self.min_episodes is not None:
                raise ValueError("sequential.method group takes looks (how many) and no p1 or min_episodes: every "
                                 "requirement is judged at the look the case stops at")
        elif self.p1 is None:
            raise ValueError(f"sequential.method {self.method} needs p1 (the rate a good policy should pass quickly at)")
        return self


class Detect(Strict):
    """The drop in success rate against the baseline a case must flag with probability ``power``.
    With ``episodes: auto``: enough paired episodes, fixed before the run, for the exact McNemar
    test. With a number of episodes: the sequential paired test's target (simgate.pairedseq),
    its cap planned for it. Default: ``[tool.simgate.detect]`` in pyproject.toml."""

    drop: float = Field(gt=0.0, lt=1.0)
    power: float = Field(default=0.9, gt=0.5, lt=1.0)
    #: the baseline's success rate to plan for (default: thresholds.min_success_rate, the hardest
    #: rate a baseline meeting the requirement can have)
    baseline_rate: float | None = Field(default=None, gt=0.0, le=1.0)
    #: the most episodes auto (or the sequential paired test's cap) may choose
    most: int = Field(default=5000, gt=0, le=100_000)


class FrequencyResponse(Strict):
    """A policy inspection (:mod:`simgate.frequency`): a sinusoid on one observation channel."""

    #: the observation index, or ``group:position`` (``imu:1``: the env's group ``imu``, its 2nd channel)
    channel: Union[Annotated[int, Field(ge=0)], Annotated[str, Field(pattern=r"^[A-Za-z_]\w*(:\d+)?$")]]
    action: int = Field(default=0, ge=0)
    amplitude: float = Field(gt=0.0)
    frequencies: list[Annotated[float, Field(gt=0.0)]] = Field(min_length=1)
    cycles: int = Field(default=5, ge=1, le=1000)  # periods measured per frequency
    settle: int = Field(default=2, ge=0, le=1000)  # periods discarded first (a policy with memory settles)


#: a search axis: ``<perturbation kind>.<param>``, as a matrix axis names its target
AXIS_PATTERN = r"^[A-Za-z_][\w]*\.[A-Za-z_][\w]*$"
SearchAxis = Annotated[str, Field(pattern=AXIS_PATTERN)]
Interval = Annotated[list[float], Field(min_length=2, max_length=2)]


class HardLimitsSpec(Strict):
    """Limits that end an episode at the first control step one is exceeded (simgate.limits)."""
    joint_torque: PerJoint | None = None  # N·m (N for a slide): each actuator's |force|, every physics step
    joint_speed: PerJoint | None = None  # rad/s (m/s): each actuator's |velocity|, every physics step
    contact_force: dict[str, float] | None = None  # {body: N}: the net contact force on the body, every physics step
    base_tilt_deg: float | None = Field(default=None, gt=0.0, lt=180.0)  # the floating base's z axis from vertical
    workspace: dict[Literal["x", "y", "z"], list[float]] | None = None  # the floating base's position, [low, high] m

    @field_validator("joint_torque", "joint_speed")
    @classmethod
    def _positive(cls, value):
        return positive_limits(value)

    @field_validator("contact_force")
    @classmethod
    def _named(cls, value):
        if value is not None and (not value or any(limit <= 0 for limit in value.values())):
            raise ValueError("contact_force: give {body name: newtons}, each a positive number")
        return value

    @field_validator("workspace")
    @classmethod
    def _box(cls, value):
        for axis, pair in (value or {}).items():
            if len(pair) != 2 or not pair[0] < pair[1]:
                raise ValueError(f"workspace.{axis}: give [low, high] with low < high, received {pair}")
        return value


class Replay(Strict):
    """A pinned regression scenario's episodes: exactly these episodes of another case's seeds
    (``python -m simgate pin`` writes it)."""
    scenario: str  # the scenario whose seeds these are
    point: dict[str, Any] = Field(default_factory=dict)  # its matrix point
    episodes: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    pinned_from: str  # the case the episodes failed in
    failing_policy: str
    failing_digest: str | None = None
    fixed_by: str  # the policy whose successes on them set min_successes
    params: dict[str, float] | None = None  # a search row's values, written into the perturbations


class Search(Strict):
    """Explore a box of perturbation params instead of (or beside) fixed points (simgate.search):
    failure boundaries, counterexamples shrunk toward nominal, sensitivity, and, with
    ``require: holds_inside_envelope``, a certified operating envelope."""

    space: dict[SearchAxis, Interval] = Field(min_length=1)  # axis: [low, high]
    #: the box the policy is promised to hold inside (a sub-box of space containing nominal)
    envelope: dict[SearchAxis, Interval] = Field(default_factory=dict)
    budget: int = Field(gt=0, le=1_000_000)  # episodes at most, for the whole search of one case
    require: Literal["holds_inside_envelope"] | None = None
    #: points per envelope axis in the certification's covering design (corners included)
    levels: int = Field(default=3, ge=2, le=9)


class ScenarioSpec(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.]*$")
    description: str = ""
    env: str
    policies: list[str] | None = None
    #: a number, or auto: chosen for the comparison with the baseline (see ``detect``)
    episodes: Union[Annotated[int, Field(gt=0, le=100_000)], Literal["auto"]]
    detect: Detect | None = None
    #: the episode counts of earlier runs of this scenario (same seed) whose success test was
    #: INCONCLUSIVE: this run is judged at what they left of alpha (docs/statistics.md)
    earlier_looks: list[Annotated[int, Field(gt=0)]] = Field(default_factory=list)
    horizon: float = Field(gt=0.0, le=3600.0, description="seconds of simulated time per episode")
    seed: int = Field(default=0, ge=0)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    determinism_episodes: int = Field(default=2, ge=1)
    #: seconds one case (all its episodes, the baseline's too) may take before it fails as a
    #: policy error (timeout); a policy call may take ``policy_timeout`` seconds
    case_timeout: float = Field(default=3600.0, gt=0.0)
    policy_timeout: float = Field(default=60.0, gt=0.0)
    #: false: an informational scenario (a sensitivity curve beyond the spec); its failures are
    #: reported as expected failures and never block promotion
    gate: bool = True
    #: Allure severity (default: normal; minor for an informational scenario)
    severity: Literal["blocker", "critical", "normal", "minor", "trivial"] | None = None
    perturbations: list[PerturbationEntry] = Field(default_factory=list)
    matrix: dict[str, MatrixAxis] = Field(default_factory=dict)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    #: sequential stopping; ``episodes`` is then the cap (INCONCLUSIVE if undecided by then)
    sequential: Sequential | None = None
    #: auto: a gating case that can be judged at looks (no baseline of another policy, only
    #: look-valid requirements) runs the group-sequential design on ``episodes`` unless it declares
    #: ``sequential``; fixed: exactly ``episodes``, one look (simgate.groupseq)
    design: Literal["auto", "fixed"] = "auto"
    classify: Classify = Field(default_factory=Classify)
    #: inspect the policy's frequency response (reported with a Bode plot; needs no threshold)
    frequency_response: FrequencyResponse | None = None
    #: explore a box of perturbation params (simgate.search); checked further by the loader
    search: Search | None = None
    #: limits that end an episode at the first control step one is exceeded (a failure, not a statistic)
    hard_limits: HardLimitsSpec | None = None
    #: a pinned regression scenario: the episodes it replays (``python -m simgate pin``)
    replay: Replay | None = None
    #: false: a perturbed case does not also run its episodes with the perturbations off (the
    #: benign arm, which says what the perturbation costs; simgate.benign)
    benign: bool = True

    @model_validator(mode="after")
    def _pinned(self):
        if self.replay is None:
            if self.thresholds.min_successes is not None:
                raise ValueError("thresholds.min_successes is for a pinned regression scenario (replay:); "
                                 "use min_success_rate")
            return self
        if self.episodes != len(self.replay.episodes):
            raise ValueError(f"replay lists {len(self.replay.episodes)} episode(s) but episodes is {self.episodes}: "
                             "they must agree")
        if self.matrix or self.sequential is not None or self.search is not None or self.earlier_looks:
            raise ValueError("a pinned regression scenario (replay:) replays fixed episodes: no matrix, sequential, "
                             "search or earlier_looks")
        if self.thresholds.min_successes is None:
            raise ValueError("a pinned regression scenario (replay:) needs thresholds.min_successes")
        if self.thresholds.min_successes > len(self.replay.episodes):
            raise ValueError(f"thresholds.min_successes {self.thresholds.min_successes} is more than the "
                             f"{len(self.replay.episodes)} pinned episode(s)")
        return self

    @model_validator(mode="after")
    def _auto_and_looks(self):
        if self.episodes == "auto":
            if self.detect is None:
                raise ValueError("episodes: auto needs detect: {drop: ..., power: ...} (the drop to catch against the baseline)")
            if self.detect.baseline_rate is None and self.thresholds.min_success_rate is None:
                raise ValueError("episodes: auto plans for a baseline rate: set detect.baseline_rate or thresholds.min_success_rate")
        if self.earlier_looks:
            if self.sequential is not None:
                raise ValueError("earlier_looks is for fixed-size runs; a sequential anytime case is extended by raising "
                                 "episodes alone (its PASS stays valid however far it continues)")
            if self.episodes == "auto" or sorted(set(self.earlier_looks)) != list(self.earlier_looks) \
                    or self.earlier_looks[-1] >= self.episodes:
                raise ValueError(f"earlier_looks should be increasing episode counts below episodes ({self.episodes}), "
                                 f"received {list(self.earlier_looks)}")
            if self.thresholds.min_success_rate is None:
                raise ValueError("earlier_looks spends the success test's alpha: set thresholds.min_success_rate")
        return self

    @model_validator(mode="after")
    def _sequential_needs_a_rate(self):
        if self.sequential is None:
            return self
        p0 = self.thresholds.min_success_rate
        if p0 is None:
            raise ValueError("sequential stopping decides thresholds.min_success_rate: set it too")
        if self.design == "fixed":
            raise ValueError("design: fixed runs exactly episodes, one look: drop it or the sequential block")
        if self.sequential.p1 is not None and not p0 < self.sequential.p1:
            raise ValueError(f"sequential.p1 ({self.sequential.p1:g}) should be above thresholds.min_success_rate ({p0:g})")
        return self

    @field_validator("policies")
    @classmethod
    def _some_policy(cls, value):
        if value is not None and not value:
            raise ValueError("an empty list evaluates no policy: list policies here, or omit 'policies' "
                             "to use the configured candidates")
        return value

    @field_validator("matrix")
    @classmethod
    def _axis_names(cls, value):
        for name in value:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"matrix axis name {name!r} may hold only letters, digits and '_'")
        return value
