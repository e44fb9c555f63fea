import dataclasses
from pathlib import Path

import pytest

from simgate.errors import SimgateError


# -- YAML robots and contracts: each bad input is one message with the file, the line, the key
# and the fix, found before any episode runs ------------------------------------------------------
_QUADRUPED = Path(__file__).resolve().parent.parent / "envs" / "quadruped"
_ROBOT_YAML = """\
kind: mjcf
name: walker
scene: walker.xml
base: trunk
control_hz: 50
reset: {keyframe: stand}
feet: [FL_foot, FR_foot, HL_foot, HR_foot]
terminate: {base_height_below: 0.1}
"""


def _robot_folder(tmp_path, robot: str = _ROBOT_YAML, xml: str | None = None) -> Path:
    folder = tmp_path / "walker"
    folder.mkdir(exist_ok=True)
    (folder / "walker.xml").write_text(xml if xml is not None else (_QUADRUPED / "quadruped.xml").read_text())
    (folder / "robot.yaml").write_text(robot)
    return folder / "robot.yaml"


def _robot_error(tmp_path, robot: str = _ROBOT_YAML, xml: str | None = None) -> str:
    from simgate.robots.env import MjcfEnv
    from simgate.robots.load import read_robot

    with pytest.raises((SimgateError, ValueError)) as info:
        MjcfEnv(read_robot(_robot_folder(tmp_path, robot, xml), "envs/walker/robot.yaml"))
    return str(info.value)


def _contract_error(tmp_path, host, edit) -> str:
    """The shipped quadruped contract with ``edit(text)`` applied, bound to the YAML quadruped."""
    from simgate.robots.load import contract_file
    from simgate.robots.configure import _checked
    from simgate.runner import build_env

    path = tmp_path / "contract.yaml"
    path.write_text(edit((Path(__file__).resolve().parent.parent / "policies" / "quadruped" / "contract.yaml").read_text()))
    spec = host.registries.policies.get("quadruped-robust-contract")
    with pytest.raises(SimgateError) as info:
        contract = contract_file(path, "policies/x/contract.yaml")
        bound = build_env(host.registries.envs.get("quadruped-mjcf"), dataclasses.replace(spec, contract=contract))
        problems = _checked(dataclasses.replace(spec, contract=contract), bound)
        if problems:
            raise SimgateError("\n".join(problems))
    return str(info.value)


def test_robot_a_misspelt_key_names_the_line_and_the_closest_key(tmp_path):
    message = _robot_error(tmp_path, _ROBOT_YAML.replace("control_hz: 50", "control_hz: 50\nterminat: {}"))
    assert message.startswith("envs/walker/robot.yaml:6:") and "unknown key 'terminat'" in message
    assert "did you mean 'terminate'" in message


def test_robot_a_keyframe_that_is_not_there_names_the_closest(tmp_path):
    message = _robot_error(tmp_path, _ROBOT_YAML.replace("keyframe: stand", "keyframe: stnad"))
    assert "envs/walker/robot.yaml:6:" in message and "no keyframe named 'stnad'" in message
    assert "did you mean 'stand'" in message


def test_robot_a_keyframe_written_for_another_model_is_refused_not_padded(tmp_path):
    xml = (_QUADRUPED / "quadruped.xml").read_text().replace('qpos="0 0 0.2125 1 0 0 0 ', 'qpos="0 0 0.2125 1 0 0 0 0 0 ')
    message = _robot_error(tmp_path, xml=xml)
    # MuJoCo 4's compiler refuses it (3.x padded it); either way one message naming the robot file
    assert ("keyframe 'stand' has 21 qpos values but the model has 19" in message and "robot.yaml:6" in message) or (
        "invalid qpos size, expected 19, got 21" in message and "robot.yaml:3" in message)


def test_robot_a_foot_that_is_not_in_the_mjcf(tmp_path):
    message = _robot_error(tmp_path, _ROBOT_YAML.replace("HR_foot]", "HR_fot]"))
    assert "no geom or body named 'HR_fot'" in message and "did you mean 'HR_foot'" in message
    assert "robot.yaml:7" in message


def test_robot_a_mesh_folder_that_does_not_exist(tmp_path):
    xml = (_QUADRUPED / "quadruped.xml").read_text().replace(
        '<compiler angle="radian" autolimits="true"/>',
        '<compiler angle="radian" autolimits="true" meshdir="meshes"/>\n  <asset><mesh name="shell" file="shell.stl"/></asset>')
    message = _robot_error(tmp_path, xml=xml)
    assert "scene 'walker.xml' does not compile" in message and "meshes/shell.stl" in message
    assert "robot.yaml:3" in message


def test_robot_a_scene_file_that_does_not_exist(tmp_path):
    from simgate.robots.load import read_robot

    path = _robot_folder(tmp_path, _ROBOT_YAML.replace("scene: walker.xml", "scene: walkr.xml"))
    with pytest.raises(SimgateError, match=r"robot.yaml:3: scene: 'walkr.xml' does not exist"):
        read_robot(path, "envs/walker/robot.yaml")


def test_contract_an_unknown_term_names_the_closest(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("term: gait_phase", "term: gait_phse"))
    assert "policies/x/contract.yaml:" in message and "unknown term 'gait_phse'" in message
    assert "did you mean 'gait_phase'" in message


def test_contract_a_key_the_term_does_not_take(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("{term: gait_phase, hz: 2.0", "{term: gait_phase, hz: 2.0, frame: body"))
    assert "term 'gait_phase' does not take frame; it takes: hz" in message


def test_contract_an_actuator_named_twice(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("HR_abduction, HR_flexion, HR_knee]\n  mapping",
                                                                   "HR_abduction, HR_flexion, HR_flexion]\n  mapping"))
    assert "actuator 'HR_flexion' is listed twice" in message and "policies/x/contract.yaml:" in message


def test_contract_a_sensor_of_the_wrong_kind(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("source: imu_gyro", "source: imu_accel"))
    assert "sensor 'imu_accel' is a mjSENS_ACCELEROMETER, not a gyro sensor" in message


def test_contract_sizes_that_do_not_add_up_to_the_network(tmp_path, host):
    message = _contract_error(tmp_path, host, lambda t: t.replace("  - {term: gait_phase, hz: 2.0, group: clock}\n",
                                                                   "  - {term: gait_phase, hz: 2.0, group: clock}\n"
                                                                   "  - {term: padding, size: 2}\n"))
    assert "observation_size is 34 in the manifest but its contract gives 36" in message
    assert "padding 2" in message


def test_contract_a_network_whose_input_is_not_the_contract_s(tmp_path, host):
    """The manifest and the contract agree, the ONNX file does not."""
    from simgate.robots.check import check_policy_against_contract
    from simgate.robots.load import contract_file
    from simgate.runner import build_env

    path = tmp_path / "contract.yaml"
    path.write_text((Path(__file__).resolve().parent.parent / "policies" / "quadruped" / "contract.yaml").read_text()
                    .replace("  - {term: gait_phase, hz: 2.0, group: clock}\n", "  - {term: gait_phase, hz: 2.0, group: clock}\n"
                             "  - {term: padding, size: 2}\n"))
    spec = host.registries.policies.get("quadruped-robust-contract")
    spec = dataclasses.replace(spec, observation_size=36, contract=contract_file(path, "contract.yaml"))
    env = build_env(host.registries.envs.get("quadruped-mjcf"), spec)
    (problem,) = check_policy_against_contract(spec, env)
    assert "the ONNX model's input" in problem and "has 34 values per row" in problem and "contract gives 36" in problem
