"""Repository-wide pytest set-up.

Registers the Hypothesis profiles (SPEC §7) and loads the default one
(``HYPOTHESIS_PROFILE``, else ``ci`` under ``CI``, else ``dev``); the
``--hypothesis-profile`` option, handled by Hypothesis's plugin after this
file is loaded, overrides it.  TensorFlow's C++ log level must be set before
TensorFlow is first imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hypothesis import settings

from cellverify.profiles import default_profile, register_profiles

register_profiles()
settings.load_profile(default_profile())
