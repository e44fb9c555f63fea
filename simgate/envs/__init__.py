"""Environments: the MujocoEnv contract and the gymnasium adapter."""
