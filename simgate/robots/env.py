"""MjcfEnv: a robot from its MJCF and a YAML file, bound to one policy's contract.

The robot (``robot.yaml``) says what the world is: the scene, the reset keyframe and its noise,
the control rate, the feet, termination and success. The contract (the policy manifest's
``contract:``) says how that policy sees and drives it: ordered observation terms
(:mod:`simgate.robots.terms`) and the action mapping (:mod:`simgate.robots.actions`). One robot
serves policies with different contracts: :meth:`MjcfEnv.for_policy` binds one.

The contract's stateful pieces (previous action, filter, delay line, history frames, the
episode's command and start pose, the tracking error so far) are per-episode state, kept in
MuJoCo's ``userdata`` slots that this env appends to the model for them (layout in
:class:`Layout`): the engines carry a simulation's whole integration state, userdata included,
so the reference engine, the batched engine, replay and Ray give the same bits, and neither the
policy object nor the user's MJCF holds any of it.

Every per-step rule is a row rule (one implementation over rows, elementwise numpy). The
batched engine asks each rule once per control step for a lane of up to 32 rows, so a rule's
cost is mostly numpy's fixed cost per call, not arithmetic: what does not change during an
episode (addresses, slots, thresholds) is worked out once, and a rule fetches each field of
``data`` once and makes as few numpy calls as it can without changing a single bit.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from simgate.envs.base import MujocoEnv, frame_skip_for
from simgate.robots import quat
from simgate.robots.actions import ActionMap
from simgate.robots.check import check_robot
from simgate.robots.terms import ContractError, build_terms

if TYPE_CHECKING:  # the definitions' module builds this env: no import back
    from simgate.robots.load import ContractDef, RobotDef

CONTACT_PREFIX = "simgate_contact_"


class Layout:
    """Where the contract's per-episode state sits in ``userdata`` (after the scene's own slots)."""

    def __init__(self, first: int, n_action: int, delay: int, history: list[int]):
        slots = {}
        at = first
        for name, size in (("start", 3), ("command", 3), ("track", 2), ("raw", n_action), ("applied", n_action),
                           ("filter", n_action),
                           ("delay", delay * n_action), ("filled", 1), ("gait", 1),
                           ("history", sum(history))):
            slots[name] = slice(at, at + size)
            at += size
        self.slots, self.end = slots, at

    def __getitem__(self, name: str) -> slice:
        return self.slots[name]


class MjcfEnv(MujocoEnv):
    """A robot described by YAML; with a contract (``for_policy``) it can run a policy."""

    name: ClassVar[str] = ""

    def __init__(self, robot: RobotDef, contract: ContractDef | None = None, scene=None):
        self.robot, self.contract = robot, contract
        self.name = robot.robot.name
        if scene is None:  # (the scene's own userdata size, its compiled model): read and checked once per robot
            spec = self._scene_spec()
            scene = (int(spec.nuserdata), self._compiled(spec))
            check_robot(robot, scene[1])
        self._scene = scene
        self._scene_userdata, nominal = scene
        self.scene_model = nominal  # the scene as written (no contact sensors, no contract slots)
        self.control_hz = (robot.robot.control_hz if robot.robot.control_hz is not None
                           else 1.0 / (robot.robot.decimation * nominal.opt.timestep))
        frame_skip_for(self.control_hz, nominal.opt.timestep, f"robot {self.name!r} ({robot.where('control_hz')})")
        self.joint_limit_exclude = tuple(robot.robot.joint_limit_exclude)
        self._feet = list(robot.robot.feet)
        self._touching = list(robot.robot.terminate.touching)
        self.terms = []
        self.actions = None
        self.frames, self.frames_order = 1, "newest_first"
        self.layout = Layout(self._scene_userdata, 0, 0, [])
        if contract is not None:
            self.actions = ActionMap(contract, robot, nominal)
            self.terms = build_terms(contract, robot, nominal, self.actions)
            frame = sum(t.size * t.history for t in self.terms)
            stack = contract.contract.frame_stack
            self.frames = stack.length if stack is not None else 1
            self.frames_order = stack.order if stack is not None else "newest_first"
            self.layout = Layout(self._scene_userdata, self.actions.size, contract.contract.action.delay_steps,
                                 [t.size * (t.history - 1) for t in self.terms] + [frame * (self.frames - 1)])
            at = self.layout["history"].start
            for term in self.terms:
                term.history_slice = slice(at, at + term.size * (term.history - 1))
                at = term.history_slice.stop
            self.frames_slice = slice(at, at + frame * (self.frames - 1))
        self.frame_size = sum(t.size * t.history for t in self.terms)
        self.observation_size = self.frame_size * self.frames
        self.action_size = self.actions.size if self.actions is not None else 0
        self.command = next((t for t in self.terms if t.kind == "velocity_commands"), None)
        if self.command is not None and robot.robot.base is None:
            raise ContractError(f"{contract.where('observation')}: a velocity_commands term needs a floating base "
                                f"(its velocity is tracked): robot {self.name!r} ({robot.display}) names no 'base:'")
        still = next((t for t in self.terms if t.kind == "gait_phase" and t.cfg.still_phase is not None), None)
        if still is not None and self.command is None:  # no command would read as "stand" at every step
            raise ContractError(f"{contract.where('observation')}: gait_phase's still_phase holds the phase while the "
                                "velocity command is still, and this contract has no velocity_commands term; add the "
                                "command the policy followed, or drop still_phase")
        success = robot.robot.success
        if contract is not None and success.velocity_tracking is not None and self.command is None:
            # every episode would fail its tracking bound for want of a command: a wrong verdict
            raise ContractError(f"{robot.where('success', 'velocity_tracking')}: success.velocity_tracking measures "
                                f"against the policy's velocity command, but the contract of {contract.display} has no "
                                "velocity_commands term; add one (the command the policy was trained to follow) or "
                                "drop the bound")
        self.progress_unit = "m" if success.distance is not None else ""
        signals = []
        if self.command is not None:
            signals.append("velocity_error")
        if self._feet:
            signals.append("contact_force")
        self.signals = tuple(signals)
        self._ids: dict | None = None
        # what the per-step rules look up, worked out once: userdata columns, the fall threshold
        self._stateful = self.frames > 1 or any(t.history > 1 for t in self.terms)  # history to keep
        self._filled = self.layout["filled"].start
        self._command = self.layout["command"].start
        self._track = (self.layout["track"].start
                       if self.command is not None and success.velocity_tracking is not None else None)
        stop = robot.robot.terminate
        self._tilt_cos = math.cos(math.radians(stop.tilt_above_deg)) if stop.tilt_above_deg is not None else None

    # -- binding -----------------------------------------------------------------------------
    def for_policy(self, spec) -> MjcfEnv:
        """This robot under ``spec``'s contract (a policy without one cannot drive a YAML robot)."""
        contract = getattr(spec, "contract", None)
        if contract is None:
            raise ValueError(f"policy {spec.name!r} ({spec.manifest}) has no contract, and robot {self.name!r} "
                             f"({self.robot.display}) is described by YAML: add 'contract:' to the policy's manifest "
                             "entry (observation terms and action mapping), or gate it on a Python env")
        return MjcfEnv(self.robot, contract, self._scene)  # the scene compiled once, for every binding

    def inputs(self) -> dict:
        """What this env's rules depend on beyond simgate's code and the compiled model (cache key)."""
        return {"robot": self.robot.digest, "contract": self.contract.digest if self.contract else None}

    # -- model -------------------------------------------------------------------------------
    def _scene_spec(self):
        import mujoco

        try:
            spec = mujoco.MjSpec.from_file(str(self.robot.scene))
        except Exception as exc:  # MuJoCo's parser: a missing include or mesh folder, a bad attribute
            raise ValueError(f"{self.robot.where('scene')}: scene {self.robot.robot.scene!r} cannot be loaded by "
                             f"MuJoCo: {exc}") from None
        if self.robot.robot.timestep is not None:  # a training env that set the step in code (Playground's sim_dt)
            spec.option.timestep = self.robot.robot.timestep
        return spec

    def build_spec(self):
        """The scene plus what the rules read: a contact sensor per foot / touching part, and the
        contract's userdata slots."""
        import mujoco

        spec = self._scene_spec()
        names = {g.name for g in spec.geoms}
        for part in dict.fromkeys(self._feet + self._touching + self._contact_parts()):
            kind = mujoco.mjtObj.mjOBJ_GEOM if part in names else mujoco.mjtObj.mjOBJ_BODY
            sensor = spec.add_sensor(name=CONTACT_PREFIX + part, type=mujoco.mjtSensor.mjSENS_CONTACT, objtype=kind,
                                     objname=part)
            sensor.intprm[0] = 1 | 2  # data: found (how many contacts), force (the net force, world frame)
            sensor.intprm[1] = 3  # reduce: netforce over the part's contacts
            sensor.intprm[2] = 1
        spec.nuserdata = max(self.layout.end, self._scene_userdata) if hasattr(self, "layout") else self._scene_userdata
        if self.contract is not None and self.contract.contract.action.pd is not None:
            _pd_servos(spec, self.contract)
        return spec

    def build_model(self):
        return self._compiled(self.build_spec())

    def _compiled(self, spec):
        try:
            return spec.compile()
        except Exception as exc:  # MuJoCo's compiler: a mesh file or folder missing, a keyframe of another size
            message = " ".join(str(exc).split())
            raise ValueError(f"{self.robot.where('scene')}: scene {self.robot.robot.scene!r} does not compile: "
                             f"{message}; fix the MJCF (paths are relative to it)") from None

    def _contact_parts(self) -> list[str]:
        return [p for t in self.terms if t.kind in ("contact", "contact_forces") for p in t.parts]

    def index(self, model) -> dict:
        """Addresses by name, looked up once: perturbed copies share the nominal layout."""
        if self._ids is None:
            free = None
            if self.robot.robot.base is not None:
                base = model.body(self.robot.robot.base)
                free = next(j for j in range(model.njnt) if model.jnt_bodyid[j] == base.id
                            and model.jnt_type[j] == 0)  # mjJNT_FREE (checked by check_robot)
            contact = {p: model.sensor(CONTACT_PREFIX + p).adr[0]
                       for p in dict.fromkeys(self._feet + self._touching + self._contact_parts())}
            # the contact sensors of each list of parts (a term's, the feet, the touching rule) as
            # one address array: one fancy index reads them all. (A sensor's data: the number of
            # contacts, then the net force's x, y, z.)
            parts = {tuple(ps): np.array([contact[p] for p in ps], dtype=int)
                     for ps in [self._feet, self._touching] + [t.parts for t in self.terms if t.parts]}
            hinge = [j for j in range(model.njnt) if model.jnt_type[j] in (2, 3)]  # slide, hinge
            stop = self.robot.robot
            self._ids = {"qpos": None if free is None else model.jnt_qposadr[free],
                         "qvel": None if free is None else model.jnt_dofadr[free], "contact": contact,
                         "parts": parts, "feet_force": parts[tuple(self._feet)][:, None] + np.arange(1, 4),
                         "outside": _ranges(model, stop.terminate),
                         "within": (np.array([model.jnt_qposadr[model.joint(j).id] for j in stop.success.joint_within],
                                             dtype=int), np.array(list(stop.success.joint_within.values()), dtype=float)),
                         "joints_qpos": np.array([model.jnt_qposadr[j] for j in hinge], dtype=int),
                         "joints_qvel": np.array([model.jnt_dofadr[j] for j in hinge], dtype=int)}
        return self._ids

    def contact_adrs(self, model, parts: list[str]) -> np.ndarray:
        """The addresses of ``parts``' contact sensors in sensordata, in their order."""
        return self.index(model)["parts"][tuple(parts)]

    def base_quat(self, model, data) -> np.ndarray:
        a = self.index(model)["qpos"]
        if a is None:
            raise ValueError(f"robot {self.name!r} has no floating base ('base:'): a term reading the free joint "
                             "cannot be computed; name the base body, or read a sensor")
        return data.qpos[:, a + 3:a + 7]

    # -- episode -----------------------------------------------------------------------------
    def reset(self, model, data, rng: np.random.Generator) -> None:
        """The keyframe, then the draws in a fixed order: yaw, joint position scale, joint
        positions, joint velocities, base velocity, then the contract's sampled commands."""
        reset = self.robot.robot.reset
        key = model.key(reset.keyframe).id
        ids = self.index(model)
        data.qpos[:] = model.key_qpos[key]
        data.qvel[:] = model.key_qvel[key]
        if model.na:
            data.act[:] = model.key_act[key]
        a = ids["qpos"]
        yaw = None  # the start heading as drawn (not re-derived from the quaternion: same bits as the draw)
        if reset.yaw is not None:
            yaw = rng.uniform(reset.yaw[0], reset.yaw[1])
            data.qpos[a + 3:a + 7] = quat.yaw_times(yaw, np.array(model.key_qpos[key][a + 3:a + 7]))
        joints = ids["joints_qpos"]
        if reset.joint_pos_scale is not None:
            low, high = reset.joint_pos_scale
            data.qpos[joints] = data.qpos[joints] * rng.uniform(low, high, size=len(joints))
        if reset.joint_pos is not None:
            data.qpos[joints] = data.qpos[joints] + _draw(rng, reset.joint_pos, len(joints))
        if reset.joint_vel is not None:
            dofs = ids["joints_qvel"]
            data.qvel[dofs] = data.qvel[dofs] + _draw(rng, reset.joint_vel, len(dofs))
        if reset.base_vel is not None:
            b = ids["qvel"]
            data.qvel[b:b + 6] = data.qvel[b:b + 6] + _draw(rng, reset.base_vel, 6)
        data.ctrl[:] = model.key_ctrl[key] if reset.ctrl == "keyframe" else 0.0
        if reset.ctrl == "start_pose":
            for i in range(model.nu):
                if model.actuator_trntype[i] == 0:  # a joint's actuator: hold where the joint starts
                    data.ctrl[i] = data.qpos[model.jnt_qposadr[model.actuator_trnid[i, 0]]]
        if self.contract is not None:
            self._start_contract(model, data, rng, yaw)

    def _start_contract(self, model, data, rng, yaw) -> None:
        lay, a = self.layout, self.index(model)["qpos"]
        if a is None:
            data.userdata[lay["start"]] = 0.0
        elif yaw is None:
            w, x, y, z = data.qpos[a + 3:a + 7]
            yaw = quat.yaw_of(w, x, y, z)
        if a is not None:
            data.userdata[lay["start"]] = (data.qpos[a], data.qpos[a + 1], yaw)
        data.userdata[lay["command"]] = self.command.draw(rng) if self.command is not None else 0.0
        gait = next((t for t in self.terms if t.kind == "gait_phase"), None)
        if gait is not None and isinstance(gait.cfg.hz, list):  # drawn after the command
            data.userdata[lay["gait"]] = rng.uniform(gait.cfg.hz[0], gait.cfg.hz[1])
        data.userdata[lay["track"]] = 0.0
        # the filter's state and what last_action shows before the first step are stated apart
        initial = self.actions.initial(model)
        data.userdata[lay["filter"]] = initial
        data.userdata[lay["raw"]] = self.actions.last_action_initial(model, "raw")
        data.userdata[lay["applied"]] = self.actions.last_action_initial(model, "applied")
        if lay["delay"].stop > lay["delay"].start:
            data.userdata[lay["delay"]] = np.tile(initial, self.contract.contract.action.delay_steps)
        # history frames start as copies of the first one, or as the zeros the slots hold after a reset
        data.userdata[lay["filled"]] = 1.0 if self.contract.contract.history_fill == "zeros" else 0.0

    def set_command(self, model, data, forward: float, yaw_rate: float) -> None:
        """The ``command_velocity`` perturbation's way in: forward speed (m/s) and yaw rate (rad/s)."""
        if self.command is None:
            raise ValueError(f"robot {self.name!r}: this policy's contract has no velocity_commands term to set")
        slot = self.layout["command"]
        data.userdata[slot.start] = forward
        data.userdata[slot.start + 2] = yaw_rate

    def neutral_action(self, model) -> np.ndarray:
        return self.actions.neutral(model) if self.actions is not None else np.zeros(0)

    # -- rules over rows -----------------------------------------------------------------------
    def observe_rows(self, model, data) -> np.ndarray:
        data = _Fetched(data)  # the terms read the same fields (sensordata, time): fetched once
        if not self._stateful:
            return self._frame(model, data, None)
        filled = data.userdata[:, self._filled] > 0
        frame = self._frame(model, data, filled)
        if self.frames == 1:
            return frame
        return _stacked(frame, data.userdata[:, self.frames_slice], filled, self.frames, self.frames_order)

    def _frame(self, model, data, filled) -> np.ndarray:
        """One observation frame: every term, each with its own history stack (``filled``: which
        rows have a past; None when no term keeps one)."""
        parts = []
        for term in self.terms:
            value = term.value(self, model, data)
            parts.append(value if term.history == 1 else
                         _stacked(value, data.userdata[:, term.history_slice], filled, term.history, term.history_order))
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(data.time), 0))

    def ctrl_rows(self, model, data, actions: np.ndarray) -> np.ndarray:
        if self._stateful:  # the terms are read again below
            data = _Fetched(data)
        # this step's contract state, updated in place and written back at the end: ``data``'s
        # own rows when they are a view (the batched engine's whole lane, one MjData), else a copy
        u = data.userdata
        if self._stateful:
            # the frames this step's observation showed become the past of the next one: worked
            # out before the action changes the slots they read (u may be this step's state itself)
            filled = u[:, self._filled] > 0
            past = [(term.history_slice, _pushed(term.value(self, model, data), u[:, term.history_slice], filled,
                                                 term.history))
                    for term in self.terms if term.history > 1]
            if self.frames > 1:
                past.append((self.frames_slice, _pushed(self._frame(model, data, filled), u[:, self.frames_slice],
                                                        filled, self.frames)))
        ctrl = self.actions.ctrl_rows(model, data, np.asarray(actions, dtype=np.float64), u, self.layout)
        if self._stateful:
            for columns, value in past:
                u[:, columns] = value
            u[:, self._filled] = 1.0
        data.userdata = u
        return ctrl

    def terminated_rows(self, model, data) -> list[str | None]:
        stop = self.robot.robot.terminate
        ids = self.index(model)
        a = ids["qpos"]
        qpos = data.qpos
        falls = []
        if self._tilt_cos is not None:
            up_z = 1.0 - 2.0 * (qpos[:, a + 4] ** 2 + qpos[:, a + 5] ** 2)  # the base's up axis, world z
            falls.append(up_z < self._tilt_cos)
        if stop.base_height_below is not None:
            falls.append(qpos[:, a + 2] < stop.base_height_below)
        if self._touching:
            falls.append(np.any(data.sensordata[:, ids["parts"][tuple(self._touching)]] > 0, axis=1))
        adr, low, high = ids["outside"]
        if len(adr):
            q = qpos[:, adr]
            falls.append(np.any((q < low) | (q > high), axis=1))
        if not falls:
            return [None] * len(qpos)
        fell = functools.reduce(np.logical_or, falls).tolist()
        if not any(fell):  # the common answer, without a loop over the rows (nor a numpy reduction)
            return [None] * len(fell)
        return ["fell" if f else None for f in fell]

    def signal_rows(self, model, data) -> np.ndarray:
        columns = []
        if self.command is not None:
            u = data.userdata  # a view of the rows' state, or a copy: written back when changed
            error = self._velocity_error(model, data.qpos, data.qvel, u)
            columns.append(error)
            if self._track is not None:
                u[:, self._track] += error
                u[:, self._track + 1] += 1.0
                data.userdata = u
        if self._feet:
            # every foot's net contact force at once: (n, feet, xyz), its norm per foot, the largest
            # (the arrays' own sum and max: np.sum and np.max add two Python calls to each)
            f = data.sensordata[:, self.index(model)["feet_force"]]
            columns.append(np.sqrt((f * f).sum(axis=-1)).max(axis=1))
        if not columns:
            return np.zeros((len(data.time), 0))
        out = np.empty((len(columns[0]), len(columns)))  # (filled column by column: np.stack costs more)
        for k, column in enumerate(columns):
            out[:, k] = column
        return out

    def _velocity_error(self, model, qpos, qvel, userdata) -> np.ndarray:
        """|v_xy − v_cmd| (m/s): the base's horizontal velocity against the command, which is
        given in the heading frame."""
        ids = self.index(model)
        a, b, c = ids["qpos"], ids["qvel"], self._command
        yaw = quat.yaw_of(qpos[:, a + 3], qpos[:, a + 4], qpos[:, a + 5], qpos[:, a + 6])
        cos, sin = np.cos(yaw), np.sin(yaw)  # each computed once: the same bits as at each use
        vx, vy = userdata[:, c], userdata[:, c + 1]
        ex = qvel[:, b] - (vx * cos - vy * sin)
        ey = qvel[:, b + 1] - (vx * sin + vy * cos)
        return np.hypot(ex, ey)

    # -- end of episode ------------------------------------------------------------------------
    def succeeded(self, model, data) -> bool:
        if self.terminated(model, data) is not None:
            return False
        success = self.robot.robot.success
        adr, bound = self.index(model)["within"]
        if len(adr) and not np.all(np.abs(data.qpos[adr]) < bound):
            return False
        if success.distance is not None and self.progress(model, data) < success.distance.at_least:
            return False
        if success.velocity_tracking is not None:
            track = self.layout["track"]
            total, steps = data.userdata[track.start], data.userdata[track.start + 1]
            if steps == 0 or total / steps > success.velocity_tracking:
                return False
        return True

    def progress(self, model, data) -> float:
        """Metres along world x or along the start heading (``success.distance.along``)."""
        distance = self.robot.robot.success.distance
        if distance is None:
            return 0.0
        a = self.index(model)["qpos"]
        start = self.layout["start"].start if self.contract is not None else None
        x0, y0, yaw0 = (data.userdata[start:start + 3] if start is not None else (0.0, 0.0, 0.0))
        dx, dy = data.qpos[a] - x0, data.qpos[a + 1] - y0
        if distance.along == "x":
            return float(dx)
        return float(dx * math.cos(yaw0) + dy * math.sin(yaw0))

    # -- description -------------------------------------------------------------------------
    def observation_groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        at = 0
        for term in self.terms:
            width = term.size * term.history
            groups.setdefault(term.group, []).extend(range(at, at + width))
            at += width
        groups = {g: [i + k * self.frame_size for k in range(self.frames) for i in idx] for g, idx in groups.items()}
        return groups or {"all": []}

    def observation_noise(self) -> tuple[np.ndarray, np.ndarray]:
        """The noise the training added to each channel, in observation units (the contract's
        ``noise:``, a raw-unit one times |scale|): (Gaussian std, uniform half-width), 0 where none."""
        if not self.terms:
            return np.zeros(0), np.zeros(0)
        gaussian, uniform = [], []
        for t in self.terms:
            size = t.size * t.history
            scale = np.abs(np.tile(np.broadcast_to(np.asarray(t.cfg.scale, dtype=np.float64), (t.size,)), t.history))
            noise, g, u = t.noise, np.zeros(size), np.zeros(size)
            if noise is not None and noise.std is not None:
                g[:] = noise.std
            elif noise is not None and noise.gaussian is not None:
                g = scale * noise.gaussian
            elif noise is not None:
                u = scale * noise.uniform
            gaussian.append(g)
            uniform.append(u)
        return np.tile(np.concatenate(gaussian), self.frames), np.tile(np.concatenate(uniform), self.frames)


def _ranges(model, terminate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(qpos addresses, low, high) of the joints whose leaving [low, high] ends an episode:
    ``joint_beyond``'s bound b as [-b, b] (|q| > b is q < -b or q > b, exactly), then ``joint_outside``."""
    bounds = [(j, -b, b) for j, b in terminate.joint_beyond.items()]  # a joint in both keeps both rules
    bounds += [(j, low, high) for j, (low, high) in terminate.joint_outside.items()]
    return (np.array([model.jnt_qposadr[model.joint(j).id] for j, _, _ in bounds], dtype=int),
            np.array([low for _, low, _ in bounds], dtype=float), np.array([high for _, _, high in bounds], dtype=float))


def _stacked(frame: np.ndarray, past: np.ndarray, filled: np.ndarray, length: int, order: str) -> np.ndarray:
    """``length`` frames: this one and the ``past`` ones (kept newest first); before the first
    step has passed, the first frame repeated (as Isaac Lab's and legged_gym's buffers start)."""
    past = np.where(filled[:, None], past, np.tile(frame, length - 1))
    if order == "newest_first":
        return np.concatenate([frame, past], axis=1)
    size = frame.shape[1]
    older = [past[:, k * size:(k + 1) * size] for k in range(length - 2, -1, -1)]
    return np.concatenate(older + [frame], axis=1)


def _pushed(frame: np.ndarray, past: np.ndarray, filled: np.ndarray, length: int) -> np.ndarray:
    """The past frames (newest first) once ``frame`` is one of them."""
    past = np.where(filled[:, None], past, np.tile(frame, length - 1))
    return np.concatenate([frame, past[:, :-frame.shape[1]]], axis=1)


def _pd_servos(spec, contract) -> None:
    """The contract's actuators as PD servos: actuator force kp·(ctrl − q) − kd·q̇ at every
    physics step (ctrl the target, q the joint), through the actuator's own gear, within what
    it could give before (its ctrl range, the torque a training env writing ``ctrl = tau``
    was clipped to, or else its force range). An actuator that is a servo already (a bias:
    MJCF ``<position>``) keeps its limits and takes the gains (gain kp, bias −kp, −kd)."""
    import mujoco

    cfg = contract.contract.action
    n = len(cfg.actuators)
    if np.size(cfg.pd.kp) not in (1, n) or np.size(cfg.pd.kd) not in (1, n):
        raise ContractError(f"{contract.where('action', 'pd')}: kp and kd take one number or one per actuator ({n})")
    kp = np.broadcast_to(np.asarray(cfg.pd.kp, dtype=np.float64), (n,))
    kd = np.broadcast_to(np.asarray(cfg.pd.kd, dtype=np.float64), (n,))
    by_name = {a.name: a for a in spec.actuators}
    for k, name in enumerate(cfg.actuators):
        act = by_name[name]
        if act.biastype != mujoco.mjtBias.mjBIAS_NONE:
            # already a servo (a <position> actuator: ctrl is a position, its ctrl range the joint's
            # range): only its gains change, as Playground's modify_pd_gains sets them; its force
            # and ctrl limits stay the MJCF's
            act.gainprm[0] = kp[k]
            act.biasprm[1:3] = [-kp[k], -kd[k]]
            continue
        gear = float(act.gear[0])  # the servo sees the actuator length gear·q: undo it in the bias
        limited = act.ctrllimited == mujoco.mjtLimited.mjLIMITED_TRUE or (
            act.ctrllimited == mujoco.mjtLimited.mjLIMITED_AUTO and act.ctrlrange[1] > act.ctrlrange[0])
        if limited:
            low, high = float(act.ctrlrange[0]), float(act.ctrlrange[1])
            force_limited = act.forcelimited == mujoco.mjtLimited.mjLIMITED_TRUE or (
                act.forcelimited == mujoco.mjtLimited.mjLIMITED_AUTO and act.forcerange[1] > act.forcerange[0])
            if force_limited:  # the motor could give no more than either range
                low, high = max(low, float(act.forcerange[0])), min(high, float(act.forcerange[1]))
            act.forcerange = [low, high]
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
        act.gaintype, act.biastype, act.dyntype = (mujoco.mjtGain.mjGAIN_FIXED, mujoco.mjtBias.mjBIAS_AFFINE,
                                                   mujoco.mjtDyn.mjDYN_NONE)
        act.gainprm[0] = kp[k]
        act.biasprm[0:3] = [0.0, -kp[k] / gear, -kd[k] / gear]


def _draw(rng: np.random.Generator, noise, n: int) -> np.ndarray:
    if noise.uniform is not None:
        return rng.uniform(-noise.uniform, noise.uniform, size=n)
    return rng.normal(0.0, noise.normal, size=n)


class _Fetched:
    """``data`` with each field fetched from it once, for one call of a rule: a rule's terms read
    the same fields again and again, and each read of a batch view's field is a numpy indexing
    call (a copy, when only some of its rows are live). A rule writes state by assigning a field
    (``data.userdata = u``), which goes to ``data`` itself."""

    def __init__(self, data):
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str):  # the first read of a field: later ones find it in __dict__
        value = getattr(self._data, name)
        object.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value) -> None:
        setattr(self._data, name, value)
        object.__setattr__(self, name, value)
