"""The YAML of a robot (``kind: mjcf``) and of a policy's contract, as strict pydantic models.

Unknown keys are errors (with the closest valid key); every variant a real exporter differs in
(quaternion order, frames, the first previous action, the filter constant) is a stated field with
a default that says what it assumes, never a guess. Names of MJCF elements are checked against
the compiled model later (:mod:`simgate.robots.check`), with the file and line of the YAML key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simgate.names import did_you_mean

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
Number = float | int
Pair = Annotated[list[Number], Field(min_length=2, max_length=2)]  # [low, high]


class Noise(BaseModel):
    """Noise added to a reset quantity: ``{uniform: a}`` (±a) or ``{normal: s}`` (std s)."""

    model_config = _STRICT
    uniform: Number | None = Field(default=None, ge=0)
    normal: Number | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one(self):
        if (self.uniform is None) == (self.normal is None):
            raise ValueError("give exactly one of 'uniform: a' (±a) or 'normal: s' (standard deviation s)")
        return self


class Reset(BaseModel):
    """Each episode starts from a keyframe; the draws happen in this order: yaw, joint_pos_scale,
    joint_pos, joint_vel, base_vel."""

    model_config = _STRICT
    keyframe: str
    #: the base's heading drawn uniformly from [low, high] rad about the world z axis (a free base only)
    yaw: Pair | None = None
    #: the keyframe's hinge/slide joint positions multiplied by U(low, high), each joint its own
    #: draw (legged_gym's and Playground's default_pose · U(0.5, 1.5))
    joint_pos_scale: Pair | None = None
    joint_pos: Noise | None = None  # added to the keyframe's hinge/slide joint positions
    joint_vel: Noise | None = None
    #: added to the free joint's six velocities (linear, world frame; angular, body frame), as
    #: Playground's and legged_gym's resets draw the base's velocity (U(-0.5, 0.5))
    base_vel: Noise | None = None
    #: the control before the first command: the keyframe's ``ctrl``, the start pose (each
    #: position actuator's joint as drawn), or zeros
    ctrl: Literal["keyframe", "start_pose", "zero"] = "keyframe"


class Terminate(BaseModel):
    model_config = _STRICT
    base_height_below: Number | None = None  # m, the base body's origin
    tilt_above_deg: Number | None = Field(default=None, gt=0, le=180)
    #: geoms or bodies of the robot whose touching anything ends the episode (a fallen torso)
    touching: list[str] = Field(default_factory=list)
    #: joints whose |position| past this bound (rad or m) ends the episode (a pole that fell)
    joint_beyond: dict[str, Number] = Field(default_factory=dict)
    #: joints whose position leaves [low, high] (rad or m) ends the episode (Playground's op3: a
    #: joint past its range, which is not symmetric about zero)
    joint_outside: dict[str, Pair] = Field(default_factory=dict)

    @field_validator("joint_outside")
    @classmethod
    def _ordered(cls, value):
        for joint, (low, high) in value.items():
            if not low < high:
                raise ValueError(f"joint_outside.{joint}: give [low, high] with low < high, received {[low, high]}")
        return value


class Distance(BaseModel):
    model_config = _STRICT
    along: Literal["x", "start_heading"] = "x"
    at_least: Number  # m


class Success(BaseModel):
    """Success at the horizon: alive (not terminated), and each stated bound."""

    model_config = _STRICT
    distance: Distance | None = None
    #: the mean over the episode's control steps of |v_xy - v_cmd| (m/s) below this bound; needs a
    #: velocity command (the contract's velocity_commands term)
    velocity_tracking: Number | None = Field(default=None, gt=0)
    #: joints whose |position| must be within this bound at the horizon (upright, on target)
    joint_within: dict[str, Number] = Field(default_factory=dict)


class Robot(BaseModel):
    """``envs/<name>/robot.yaml``: a robot from its MJCF, no Python."""

    model_config = _STRICT
    kind: Literal["mjcf"]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
    scene: str  # the MJCF file, relative to this YAML (its includes and meshes resolved by MuJoCo)
    #: the floating base's body (height, tilt, velocities from its free joint); none for a fixed base
    base: str | None = None
    control_hz: Number | None = Field(default=None, gt=0)
    decimation: int | None = Field(default=None, gt=0)  # physics steps per control step
    #: the physics step (s), when the training env set it in code instead of the MJCF's <option>
    timestep: Number | None = Field(default=None, gt=0)
    reset: Reset
    #: geoms or bodies that are feet: contact terms may name them, the ``slip`` signal reads them
    feet: list[str] = Field(default_factory=list)
    terminate: Terminate = Field(default_factory=Terminate)
    success: Success = Field(default_factory=Success)
    #: joints left out of the joint-limit failure rule (e.g. wrists resting on their stops at home)
    joint_limit_exclude: list[str] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _rate(self):
        if (self.control_hz is None) == (self.decimation is None):
            raise ValueError("give exactly one of 'control_hz' (policy calls per second) or 'decimation' "
                             "(physics steps per policy call)")
        return self


TERMS = ("projected_gravity", "base_quat", "base_euler", "base_ang_vel", "base_lin_vel", "joint_pos", "joint_pos_rel",
         "joint_pos_norm", "joint_vel", "joint_vel_rel", "joint_vel_norm", "contact", "contact_forces",
         "last_action", "velocity_commands", "gait_phase", "sensor", "constant", "padding")

#: the keys each term takes besides the common ones (size, scale, offset, clip, noise, history, group)
TERM_KEYS = {
    "projected_gravity": {"source", "quat_order"},
    "base_quat": {"source", "quat_order"},
    "base_euler": {"source", "quat_order"},
    "base_ang_vel": {"source", "frame", "quat_source", "quat_order"},
    "base_lin_vel": {"source", "frame", "quat_source", "quat_order", "point"},
    "joint_pos": {"joints", "source"},
    "joint_pos_rel": {"joints", "source"},
    "joint_pos_norm": {"joints", "source"},
    "joint_vel": {"joints", "source"},
    "joint_vel_rel": {"joints", "source"},
    "joint_vel_norm": {"joints", "source", "max_velocity"},
    "contact": {"bodies", "threshold", "force"},
    "contact_forces": {"bodies", "force"},
    "last_action": {"which", "initial"},
    "velocity_commands": {"components", "ranges", "value", "heading_gain", "max_yaw_rate", "quat_source",
                          "quat_order"},
    "gait_phase": {"hz", "offsets", "order", "lag_steps", "still_phase"},
    "sensor": {"sensors"},
    "constant": {"value"},
    "padding": set(),
}
COMMON_KEYS = {"term", "size", "scale", "offset", "clip", "clip_scaled", "noise", "history", "history_order", "group"}
COMMAND_COMPONENTS = ("vx", "vy", "yaw_rate", "heading_hold")


class TermNoise(BaseModel):
    """A term's training noise, one of: ``std`` (Gaussian, observation units: what a bare number
    means), ``uniform`` (half-width h of U(−h, h)) or ``gaussian`` (std), these two in the term's
    raw units, before offset, clip and scale."""

    model_config = _STRICT
    std: Number | None = Field(default=None, ge=0)
    uniform: Number | None = Field(default=None, ge=0)
    gaussian: Number | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one(self):
        if sum(v is not None for v in (self.std, self.uniform, self.gaussian)) != 1:
            raise ValueError("give one of a number (a Gaussian std in observation units), {uniform: h} (U(-h, h)) "
                             "or {gaussian: std}, these two in the term's raw units")
        return self


class Term(BaseModel):
    """One observation term: ``{term: name, ...}``. The value is
    ``clip_scaled(scale * clip(raw - offset))``."""

    model_config = _STRICT
    term: str  # one of TERMS
    size: int | None = Field(default=None, gt=0)  # stated for a check (padding: required)
    scale: Number | list[Number] = 1.0
    offset: Number | list[Number] = 0.0
    clip: Pair | None = None  # on raw − offset, before the scale (Isaac Lab's order)
    clip_scaled: Pair | None = None  # on the scaled value (legged_gym's clip_observations)
    #: the noise the training added: a number is a Gaussian std in observation units; {uniform: h}
    #: is U(−h, h) and {gaussian: s} N(0, s²) in the term's raw units, before offset, clip and
    #: scale (Isaac Lab's Unoise / Gnoise; legged_gym's noise_scales·noise_level)
    noise: TermNoise | None = None
    history: int = Field(default=1, gt=0)  # this term's last frames, stacked
    #: newest_first (this frame, then older ones) or oldest_first (Isaac Lab's flattened history)
    history_order: Literal["newest_first", "oldest_first"] = "newest_first"
    group: str | None = None  # an observation group name for perturbations (default: the term)
    # term-specific (see TERM_KEYS)
    source: str | None = None  # a sensor name, "freejoint", "qpos"/"qvel" or "sensors"
    quat_order: Literal["wxyz", "xyzw", "wxyz_read_as_xyzw"] | None = None
    quat_source: str | None = None
    frame: Literal["body", "heading", "world"] | None = None
    #: base_lin_vel from the free joint: the velocity of the base body's origin (MuJoCo's qvel), or
    #: of its centre of mass (Isaac Lab's root_lin_vel_b, Isaac Gym's root state: legged_gym)
    point: Literal["origin", "com"] | None = None
    joints: list[str] | None = None
    max_velocity: Number | list[Number] | None = None
    bodies: list[str] | None = None
    threshold: Number | None = Field(default=None, ge=0)
    force: Literal["norm", "z"] | None = None
    which: Literal["raw", "applied"] | None = None
    initial: Literal["zeros", "default_pose"] | None = None
    components: list[Literal[COMMAND_COMPONENTS]] | None = None  # type: ignore[valid-type]
    ranges: list[Pair] | None = None
    value: list[Number] | None = None
    heading_gain: Number | None = None
    max_yaw_rate: Number | None = Field(default=None, gt=0)
    #: gait_phase: cycles per second, or [low, high] drawn per episode (Playground's gait_freq)
    hz: Number | Pair | None = None
    #: gait_phase: one phase per offset (rad; e.g. [0, 3.14159] for two feet), and whether the
    #: sines come first (sin_cos: sin of every phase, then cos) or the cosines (cos_sin)
    offsets: list[Number] | None = None
    order: Literal["sin_cos", "cos_sin"] | None = None
    #: gait_phase: control steps the phase trails the episode's clock, held at 0 until then
    #: (Playground's joystick envs build the observation before they advance the phase: 1)
    lag_steps: int | None = Field(default=None, ge=0)
    #: gait_phase: the phase of every foot (rad) while the episode's velocity command is still
    #: (|command| ≤ 0.01): Playground's T1 and Apollo hold it at π when told to stand
    still_phase: Number | None = None
    sensors: list[str] | None = None  # sensor: the raw readings of these MJCF sensors, in order

    @field_validator("noise", mode="before")
    @classmethod
    def _bare_std(cls, value):
        return {"std": value} if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @field_validator("term")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in TERMS:
            raise ValueError(f"unknown term {value!r}{did_you_mean(value, TERMS)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _known_first(cls, data):
        # an unknown term makes every key look foreign: say only what is wrong
        if isinstance(data, dict) and data.get("term") not in TERMS:
            return {"term": data.get("term")}
        return data

    @model_validator(mode="after")
    def _keys_of_the_term(self):
        given = {k for k in self.model_fields_set if k not in COMMON_KEYS}
        wrong = sorted(given - TERM_KEYS[self.term])
        if wrong:
            takes = sorted(TERM_KEYS[self.term]) or ["no keys of its own"]
            raise ValueError(f"term {self.term!r} does not take {', '.join(wrong)}; it takes: {', '.join(takes)} "
                             f"(and {', '.join(sorted(COMMON_KEYS - {'term'}))})")
        if self.term == "padding" and self.size is None:
            raise ValueError("term 'padding' needs 'size' (how many zeros)")
        if self.term == "constant" and not self.value:
            raise ValueError("term 'constant' needs 'value: [numbers]'")
        if self.term == "gait_phase" and (self.hz is None or min(self.hz if isinstance(self.hz, list) else [self.hz]) <= 0):
            raise ValueError("term 'gait_phase' needs 'hz' > 0 (gait cycles per second, or [low, high] drawn per episode)")
        if self.term == "contact" and self.threshold is None:
            raise ValueError("term 'contact' needs 'threshold' (newtons; 0 means any contact)")
        if self.term == "joint_vel_norm" and self.max_velocity is None:
            raise ValueError("term 'joint_vel_norm' needs 'max_velocity' (rad/s, one or per joint)")
        if self.term == "last_action" and (self.which is None or self.initial is None):
            raise ValueError("term 'last_action' needs 'which' (raw: the network's output, or applied: after clip "
                             "and filter) and 'initial' (zeros, or default_pose: the default pose in action space); "
                             "exporters differ in both, so the contract states them")
        if self.term == "velocity_commands":
            if not self.components:
                raise ValueError("term 'velocity_commands' needs 'components' (a list of vx, vy, yaw_rate, "
                                 "heading_hold)")
            if (self.ranges is None) == (self.value is None):
                raise ValueError("term 'velocity_commands' needs exactly one of 'value' (constant, one number per "
                                 "component but heading_hold) or 'ranges' (sampled per episode)")
        if self.term == "sensor" and not self.sensors:
            raise ValueError("term 'sensor' needs 'sensors: [names]' (MJCF sensors read as they are)")
        if self.term in ("projected_gravity", "base_quat", "base_euler") and self.source is None:
            raise ValueError(f"term {self.term!r} needs 'source': a framequat sensor's name or freejoint")
        return self


class PD(BaseModel):
    """A PD loop the training env ran at the physics rate on torque actuators (unitree_rl_gym's
    and humanoid-gym's MuJoCo deployments): torque = kp·(target − q) − kd·q̇, limited to the
    actuator's former torque range. On position actuators (already servos): their gains, as
    MuJoCo Playground's ``modify_pd_gains`` sets them in code, with the MJCF's limits kept."""

    model_config = _STRICT
    kp: Number | list[Number]
    kd: Number | list[Number]


class Action(BaseModel):
    """How the network's output becomes ``ctrl``: clip, filter, delay, then the mapping."""

    model_config = _STRICT
    actuators: list[str] = Field(min_length=1)  # by name, in the network's output order
    #: offset: target = default + scale·a (position actuators); range: [-1, 1] onto the joint's
    #: range; torque: ctrl = scale·a
    mapping: Literal["offset", "range", "torque"]
    scale: Number | list[Number] = 1.0
    sign: list[Literal[1, -1]] | None = None  # per actuator, applied to a first
    clip: Pair | None = None  # on the network's output
    #: targets clipped into the joints' ranges (offset, range) / the ctrl ranges (torque). Off by
    #: default: Isaac Lab, legged_gym and Playground send targets as computed (MuJoCo clamps ctrl
    #: to a ctrl range itself; a PD loop's target is not clamped at all)
    clip_to_range: bool = False
    #: first-order low-pass: applied = alpha·a + (1 − alpha)·previous applied (1: no filter)
    filter_alpha: Number = Field(default=1.0, gt=0, le=1)
    #: the filter's and the delay line's value before the first action: the default pose in
    #: action space, or zeros
    initial: Literal["default_pose", "zeros"] = "default_pose"
    delay_steps: int = Field(default=0, ge=0)  # control steps between the network and the actuators
    #: torque actuators driven by a PD loop at the physics rate: the actuators become MuJoCo
    #: position servos with these gains (the same loop, computed inside the physics step)
    pd: PD | None = None

    @model_validator(mode="after")
    def _pd_needs_targets(self):
        if self.pd is not None and self.mapping == "torque":
            raise ValueError("pd needs position targets: use mapping offset or range (torque sends torques itself)")
        return self


class FrameStack(BaseModel):
    """The whole observation frame stacked over the last ``length`` control steps (legged_gym's
    and humanoid-gym's ``frame_stack``), as opposed to one term's ``history``."""

    model_config = _STRICT
    length: int = Field(gt=1)
    order: Literal["newest_first", "oldest_first"] = "oldest_first"


class LogCheck(BaseModel):
    model_config = _STRICT
    file: str  # a log recorded in the training env (.npz), relative to the manifest
    tolerance: Number = Field(default=1e-4, gt=0)  # largest allowed difference, observation units


class Contract(BaseModel):
    """A policy's observation/action contract (a manifest entry's ``contract:``)."""

    model_config = _STRICT
    #: the joints that joint terms read, in the network's order (default: the actuators' joints)
    joints: list[str] | None = None
    #: the default pose the contract is relative to, by joint name (default: the reset keyframe's)
    default_pose: dict[str, Number] | None = None
    observation: list[Term] = Field(min_length=1)
    frame_stack: FrameStack | None = None
    #: what the history stacks (each term's ``history``, ``frame_stack``) hold before an episode
    #: has its own frames: copies of the first frame (Isaac Lab's CircularBuffer) or zeros
    #: (humanoid-gym's and Playground's buffers, filled with zeros at reset)
    history_fill: Literal["first_frame", "zeros"] = "first_frame"
    action: Action
    log: LogCheck | None = None
