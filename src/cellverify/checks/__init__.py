"""Checks, in rooms that read only the rooms before them: ``cases`` (what a
case is, where it is claimed), ``judges`` (the invariants), ``draws`` (what
draws cases), ``runs`` (what runs them and what they found), ``mutants``
(deliberately broken cells and the kill matrix)."""
