from simgate.perturbations.add_observation_noise import AddObservationNoise
from simgate.perturbations.scale_friction import ScaleFriction
from simgate.plugin_manager import hookimpl


@hookimpl
def simgate_register_perturbations(registry):
    for cls in (ScaleFriction, AddObservationNoise):
        registry.add(cls.kind, cls)
