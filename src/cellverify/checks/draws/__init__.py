"""What draws cases: Hypothesis strategies and profiles, the space of one
invariant's cases for a kind of cell, the covering cases and the coverage
they claim.  Reads ``cases/`` and the invariant's claim in ``judges/``."""
