"""Training: the trainer that records a trace, its probe, and the executors."""
