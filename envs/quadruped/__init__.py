"""quadruped: a 12-joint walking robot with a commanded forward speed and yaw rate (MJCF + task rules in :mod:`.env`)."""
