"""The action contract: the network's output, actuator by actuator (by name), through sign,
clip, a first-order low-pass filter and a delay line, then mapped onto ``ctrl``.

The order is fixed and stated: ``a = clip(sign · output)``; ``applied = α·a + (1 − α)·previous
applied``; the delay line hands on the applied action of ``delay_steps`` control steps ago; the
mapping turns that into ctrl (``offset``: default + scale·x, ``range``: [-1, 1] onto the joint's
range, ``torque``: scale·x), clipped to the joints' (or actuators') ranges. The filter's and the
delay line's state before the first action is the contract's ``initial`` (the default pose in
action space, or zeros); what ``last_action`` shows before the first step is its own ``initial``.
"""

from __future__ import annotations

import numpy as np

from simgate.names import did_you_mean
from simgate.robots.terms import ContractError, _names, default_pose


class ActionMap:
    def __init__(self, contract, robot, model):
        cfg = contract.contract.action
        self.cfg, self.contract, self.robot = cfg, contract, robot
        names = [n for n in _names(model)["actuator"] if n]
        seen: dict[str, int] = {}
        for k, name in enumerate(cfg.actuators):
            if name in seen:
                raise ContractError(f"{contract.where('action', 'actuators', k)}: actuator {name!r} is listed twice "
                                    f"(also as entry {seen[name]}); each network output drives one actuator")
            seen[name] = k
            if name not in names:
                unnamed = model.nu - len(names)
                hint = (f" ({unnamed} of its {model.nu} actuators have no name: the contract names each one, so give "
                        "them name= attributes in the MJCF)") if unnamed else ""
                raise ContractError(f"{contract.where('action', 'actuators', k)}: no actuator named {name!r} in "
                                    f"{robot.robot.scene}{did_you_mean(name, names)}{hint}")
        self.ids = np.array([model.actuator(n).id for n in cfg.actuators])
        self.size = len(self.ids)
        joint_ids = []
        for k, i in enumerate(self.ids):
            if model.actuator_trntype[i] != 0 and cfg.mapping != "torque":
                raise ContractError(f"{contract.where('action', 'actuators', k)}: actuator {cfg.actuators[k]!r} does "
                                    f"not drive a joint, so mapping {cfg.mapping!r} has no joint target")
            joint_ids.append(int(model.actuator_trnid[i, 0]))
        import mujoco

        self.joints = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joint_ids]
        self.qpos = np.array([model.jnt_qposadr[j] for j in joint_ids])
        self.scale = _vector(cfg.scale, self.size, contract.where("action", "scale"))
        self.sign = np.asarray(cfg.sign, dtype=np.float64) if cfg.sign is not None else None
        if self.sign is not None and len(self.sign) != self.size:
            raise ContractError(f"{contract.where('action', 'sign')}: {len(self.sign)} signs for {self.size} actuators")
        self.default = default_pose(contract, robot, model, self.joints) if cfg.mapping != "torque" else np.zeros(self.size)
        self.low = model.jnt_range[joint_ids, 0].copy() if cfg.mapping != "torque" else model.actuator_ctrlrange[self.ids, 0].copy()
        self.high = model.jnt_range[joint_ids, 1].copy() if cfg.mapping != "torque" else model.actuator_ctrlrange[self.ids, 1].copy()
        limited = model.jnt_limited[joint_ids] if cfg.mapping != "torque" else model.actuator_ctrllimited[self.ids]
        if cfg.mapping == "range" and not all(limited):
            bad = [self.joints[k] for k in range(self.size) if not limited[k]]
            raise ContractError(f"{contract.where('action', 'mapping')}: mapping 'range' needs joint ranges; "
                                f"{', '.join(bad)} have none in the MJCF")
        self.bounded = bool(cfg.clip_to_range) and bool(np.all(limited))
        self.span = self.high - self.low  # the range mapping's width, worked out once
        #: the contract drives every actuator, in the model's order: its targets are the whole ctrl
        self.every = np.array_equal(self.ids, np.arange(model.nu))

    # -- the neutral action ----------------------------------------------------------------------
    def neutral(self, model) -> np.ndarray:
        """The action that holds the default pose (what the actuators get before any command)."""
        if self.cfg.mapping == "range":
            x = 2.0 * (self.default - self.low) / (self.high - self.low) - 1.0
        else:
            x = np.zeros(self.size)
        return x * self.sign if self.sign is not None else x

    def initial(self, model) -> np.ndarray:
        """The filter's and delay line's state before the first action (after sign)."""
        return self._unsigned(self.neutral(model)) if self.cfg.initial == "default_pose" else np.zeros(self.size)

    def last_action_initial(self, model, which: str) -> np.ndarray:
        """What a ``last_action`` term of kind ``which`` shows before the first step: its own
        ``initial`` (the filter's state when no such term states one)."""
        term = next((t for t in self.contract.contract.observation if t.term == "last_action" and t.which == which), None)
        if term is None:
            return self.initial(model) if which == "applied" else np.zeros(self.size)
        if term.initial == "zeros":
            return np.zeros(self.size)
        neutral = self.neutral(model)
        return neutral if which == "raw" else self._unsigned(neutral)

    def _unsigned(self, x: np.ndarray) -> np.ndarray:
        return x * self.sign if self.sign is not None else x

    # -- per control step ----------------------------------------------------------------------
    def ctrl_rows(self, model, data, actions: np.ndarray, u: np.ndarray, layout) -> np.ndarray:
        """ctrl for ``actions`` (n, size); updates the contract state in ``u`` (userdata rows)."""
        cfg = self.cfg
        u[:, layout["raw"]] = actions
        a = actions * self.sign if self.sign is not None else actions
        if cfg.clip is not None:
            a = a.clip(cfg.clip[0], cfg.clip[1])  # (the array's method: np.clip's ufunc, without its Python layers)
        if cfg.filter_alpha != 1:
            a = cfg.filter_alpha * a + (1.0 - cfg.filter_alpha) * u[:, layout["filter"]]
        u[:, layout["filter"]] = a
        u[:, layout["applied"]] = a
        if cfg.delay_steps:
            line = u[:, layout["delay"]]  # oldest first
            out = line[:, :self.size].copy()
            u[:, layout["delay"]] = np.concatenate([line[:, self.size:], a], axis=1)
            a = out
        if self.every:  # the targets are the whole ctrl: no copy of data.ctrl to write them into
            return self._map(a)
        ctrl = np.array(data.ctrl, dtype=np.float64)
        ctrl[:, self.ids] = self._map(a)
        return ctrl

    def _map(self, x: np.ndarray) -> np.ndarray:
        if self.cfg.mapping == "offset":
            target = self.default + (self.scale * x if self.scale is not None else x)
        elif self.cfg.mapping == "range":
            target = self.low + (x + 1.0) * 0.5 * self.span
        else:
            target = self.scale * x if self.scale is not None else x
        return target.clip(self.low, self.high) if self.bounded else target


def _vector(value, size: int, where: str):
    if isinstance(value, list):
        if len(value) != size:
            raise ContractError(f"{where}: scale: {len(value)} numbers for {size} actuators")
        return np.asarray(value, dtype=np.float64)
    return float(value)
