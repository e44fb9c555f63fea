"""simgate's perturbation library, registered through the hook any plugin uses."""

import importlib

from simgate.plugin_manager import hookimpl

#: module → class, one perturbation per module (kind = the module's name)
LIBRARY = {
    "scale_friction": "ScaleFriction",
    "add_payload": "AddPayload",
    "scale_body_mass": "ScaleBodyMass",
    "scale_motor_strength": "ScaleMotorStrength",
    "scale_joint_damping": "ScaleJointDamping",
    "set_gravity": "SetGravity",
    "tilt_ground": "TiltGround",
    "add_terrain": "AddTerrain",
    "add_initial_state_noise": "AddInitialStateNoise",
    "apply_pushes": "ApplyPushes",
    "add_observation_noise": "AddObservationNoise",
    "bias_observations": "BiasObservations",
    "delay_observations": "DelayObservations",
    "mask_observations": "MaskObservations",
    "add_action_noise": "AddActionNoise",
    "clip_actions": "ClipActions",
    "delay_actions": "DelayActions",
    "drop_motor": "DropMotor",
    "change_control_rate": "ChangeControlRate",
    "command_velocity": "CommandVelocity",
}


@hookimpl
def simgate_register_perturbations(registry):
    for module, name in LIBRARY.items():
        cls = getattr(importlib.import_module(f"simgate.perturbations.{module}"), name)
        registry.add(cls.kind, cls)
