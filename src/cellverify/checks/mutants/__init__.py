"""Deliberately broken cells: the built-in mutants, grouped by what they
break; :mod:`cellverify.checks.mutants.mutation` registers them with their
targets and :mod:`cellverify.checks.mutants.kill_matrix` runs them.  Reads
every room below it."""
