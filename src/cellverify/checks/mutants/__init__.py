"""The built-in mutant cells, grouped by what they break
(:mod:`cellverify.checks.mutation` registers them with their targets)."""
