"""A torque-driven pendulum held upright, and its LQR policy, as a simgate plugin."""
