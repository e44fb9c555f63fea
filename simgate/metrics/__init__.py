"""Per-episode metrics: functions of Rollouts returning one value per episode (or one column per
joint as ``{label: values}``), registered through ``simgate_register_metrics``."""
