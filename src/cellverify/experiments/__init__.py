"""Experiments: remedies verified by re-running, sweeps, checkpoints."""
