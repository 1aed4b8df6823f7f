"""What runs the checks and what they found: one invariant's search, the
suite of them, results, crashes, reproductions, and the pytest classes.
Reads every room below it."""
