"""Numerics: tolerances, the logit scale behind them, and the gradient check."""
