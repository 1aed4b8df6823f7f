"""``python -m cellverify.cli``: the same as the ``cellverify`` command."""

import sys

from cellverify.cli import main

sys.exit(main())
