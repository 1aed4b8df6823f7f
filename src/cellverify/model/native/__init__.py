"""conv1 of the shipped cell as a native CPU kernel (docs/design.md, "Native conv1").

:mod:`~cellverify.model.native.build` compiles and loads it,
:mod:`~cellverify.model.native.ops` runs it with its gradient, and
:mod:`~cellverify.model.native.choice` says when the fast path uses it.
"""
