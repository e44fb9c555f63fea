"""Engines advance the episodes of a case and return Rollouts; the reference engine is the oracle."""
