"""Policies: what a manifest declares, and the loaders for each file format."""
