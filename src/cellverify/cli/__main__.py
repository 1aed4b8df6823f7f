"""``python -m cellverify.cli``: the same as the ``cellverify`` command."""

from cellverify.cli import run

run()
