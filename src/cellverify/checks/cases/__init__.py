"""What a case is and where an invariant is claimed on it: the case, the
regions, the sizes (plain data, no TensorFlow).  The lowest room of
``checks/``: every other one reads it (docs/design.md, "Layout")."""
