"""balancebot: a planar two-wheeled balancing robot (MJCF + task rules in :mod:`.env`)."""
