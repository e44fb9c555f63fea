"""Scenario files: strict YAML schema, line-aware errors, matrix expansion into cases."""
