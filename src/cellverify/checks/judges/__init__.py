"""What judges a case: the invariant registry and catalog, the built-in
invariants, and the numerics of their tolerances.  Reads ``cases/``."""
