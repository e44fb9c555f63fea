from simgate.metrics import effort, episode, torque
from simgate.plugin_manager import hookimpl


@hookimpl
def simgate_register_metrics(registry):
    registry.add("success", episode.success)
    registry.add("return", episode.episode_return)
    registry.add("length_s", episode.length_seconds)
    registry.add("progress", episode.progress)
    registry.add("mean_abs_torque", torque.mean_abs_torque)
    registry.add("peak_abs_torque", torque.peak_abs_torque)
    registry.add("mean_power", effort.mean_power)
    registry.add("cost_of_transport", effort.cost_of_transport)
    registry.add("action_rate", effort.action_rate)
    registry.add("time_to_fall", episode.time_to_fall)
    registry.add("signal", episode.signals)
