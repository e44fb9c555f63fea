"""Checks of a robot and a contract before any episode runs; each failure is one message naming
the YAML file and line, the key, and the fix (a mismatch is an error, never a FAIL or a PASS)."""

from __future__ import annotations

from simgate.errors import located
from simgate.names import did_you_mean
from simgate.robots.terms import ContractError, _names


def check_robot(robot, model) -> None:
    """Names in ``robot.yaml`` against the compiled scene; the keyframe's lengths against the model
    (MuJoCo pads a keyframe written for another model's size without a word)."""
    names = _names(model)
    problems = []
    r = robot.robot
    needs_base = [key for key, used in (("reset.yaw", r.reset.yaw is not None),
                                        ("reset.base_vel", r.reset.base_vel is not None),
                                        ("terminate.base_height_below", r.terminate.base_height_below is not None),
                                        ("terminate.tilt_above_deg", r.terminate.tilt_above_deg is not None),
                                        ("success.distance", r.success.distance is not None)) if used]
    if r.base is None:
        if needs_base:
            problems.append(f"{robot.where(needs_base[0].split('.')[0])}: {', '.join(needs_base)} need a floating base: "
                            "name its body in 'base:'")
    elif r.base not in names["body"]:
        problems.append(f"{robot.where('base')}: base: no body named {r.base!r} in {r.scene}"
                        f"{did_you_mean(r.base, [n for n in names['body'] if n])}")
    elif not any(model.jnt_bodyid[j] == model.body(r.base).id and model.jnt_type[j] == 0 for j in range(model.njnt)):
        problems.append(f"{robot.where('base')}: base: body {r.base!r} has no free joint; a YAML robot is a floating "
                        "base (height, tilt and velocities are read from its free joint)")
    for key, parts in (("feet", r.feet), ("terminate", r.terminate.touching)):
        for k, part in enumerate(parts):
            if part not in names["geom"] and part not in names["body"]:
                sub = ("terminate", "touching", k) if key == "terminate" else ("feet", k)
                problems.append(f"{robot.where(*sub)}: no geom or body named {part!r} in {r.scene}"
                                f"{did_you_mean(part, [n for n in names['geom'] + names['body'] if n])}")
    for key, sub, joints in (("terminate", "joint_beyond", r.terminate.joint_beyond),
                             ("terminate", "joint_outside", r.terminate.joint_outside),
                             ("success", "joint_within", r.success.joint_within)):
        for joint in joints:
            if joint not in names["joint"]:
                problems.append(f"{robot.where(key, sub, joint)}: {key}.{sub}.{joint}: no joint named {joint!r} in {r.scene}"
                                f"{did_you_mean(joint, [n for n in names['joint'] if n])}")
    for k, joint in enumerate(r.joint_limit_exclude):
        if joint not in names["joint"]:
            problems.append(f"{robot.where('joint_limit_exclude', k)}: no joint named {joint!r} in {r.scene}"
                            f"{did_you_mean(joint, [n for n in names['joint'] if n])}")
    problems += _keyframe(robot, model)
    if problems:
        raise ContractError("\n".join(problems))


def _keyframe(robot, model) -> list[str]:
    import mujoco

    key = robot.robot.reset.keyframe
    keys = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_KEY, i) or "" for i in range(model.nkey)]
    if key not in keys:
        return [f"{robot.where('reset', 'keyframe')}: no keyframe named {key!r} in {robot.robot.scene}"
                f"{did_you_mean(key, [k for k in keys if k]) if any(keys) else '; the MJCF has no <keyframe>: add one'}"]
    spec = mujoco.MjSpec.from_file(str(robot.scene))
    written = next(k for k in spec.keys if k.name == key)
    problems = []
    for field, size in (("qpos", model.nq), ("qvel", model.nv), ("ctrl", model.nu), ("act", model.na)):
        n = len(getattr(written, field))
        if n and n != size:
            problems.append(f"{robot.where('reset', 'keyframe')}: keyframe {key!r} has {n} {field} values but the model "
                            f"has {size}: it was written for another model (MuJoCo would pad or cut it silently); "
                            "write it for this one")
    return problems


def check_policy_against_contract(spec, env) -> list[str]:
    """The policy's stated sizes and its ONNX file's input/output shapes against the contract."""
    contract = spec.contract
    problems = []
    for what, stated, ours in (("observation_size", spec.observation_size, env.observation_size),
                               ("action_size", spec.action_size, env.action_size)):
        if stated != ours:
            manifest = located(spec.manifest, spec.lines.get(what, spec.line), what)
            problems.append(f"{contract.where()}: policy {spec.name!r}: {what} is {stated} in the manifest ({manifest}) "
                            f"but its contract gives {ours} "
                            f"({_layout(env) if what == 'observation_size' else 'actuators'}); "
                            "fix the contract or the manifest")
    if spec.format == "onnx" and spec.file is not None and spec.file.is_file():
        problems += _onnx_shapes(spec, env)
    actuators = list(env.actions.cfg.actuators)
    order = [a for a in _model_actuator_order(env) if a in set(actuators)]
    if order != actuators:
        first = next(k for k, (a, b) in enumerate(zip(actuators, order)) if a != b)
        env.actuator_order_note = (f"{contract.where('action', 'actuators')}: the contract's actuator order differs from "
                                   f"the MJCF's from entry {first} ({actuators[first]!r} where the MJCF has "
                                   f"{order[first]!r}); simgate maps by name, as stated")
    return problems


def _model_actuator_order(env) -> list[str]:
    import mujoco

    model = env.scene_model  # the actuators are the scene's: no need to compile the bound model
    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) or "" for i in range(model.nu)]


def _layout(env) -> str:
    return " + ".join(f"{t.kind} {t.size}" + (f"x{t.history}" if t.history > 1 else "") for t in env.terms)


def _onnx_shapes(spec, env) -> list[str]:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(spec.file), providers=["CPUExecutionProvider"])
    except Exception as exc:  # a corrupt file: the loader names it per case; here only shapes are checked
        return [f"{spec.manifest}: policy {spec.name!r}: {spec.file.name} cannot be read by onnxruntime: {exc}"]
    problems = []
    inputs, outputs = session.get_inputs(), session.get_outputs()
    for what, ios, ours in (("input", inputs, env.observation_size), ("output", outputs, env.action_size)):
        last = ios[0].shape[-1] if ios and ios[0].shape else None
        if isinstance(last, int) and last != ours:
            problems.append(f"{spec.contract.where()}: policy {spec.name!r}: the ONNX model's {what} "
                            f"{ios[0].name!r} has {last} values per row ({ios[0].shape}) but the contract gives {ours}"
                            + (f" ({_layout(env)})" if what == "input" else "") + "; the contract does not describe "
                            "this network")
    return problems
