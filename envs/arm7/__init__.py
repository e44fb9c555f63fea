"""arm7: a 7-DOF torque-controlled arm reaching for a target (MJCF + task rules in :mod:`.env`)."""
