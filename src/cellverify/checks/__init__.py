"""Checks: invariants, their regions and strategies, the runner, mutants, the plugin."""
