"""Hypothesis settings profiles ``dev``, ``ci`` and ``thorough``, in one place.

The ``cellverify`` pytest plugin registers them and loads the default; pick
one with ``--hypothesis-profile NAME`` or ``HYPOTHESIS_PROFILE=NAME``; with
neither, ``ci`` is chosen when the ``CI`` variable is set, else ``dev``
(docs/design.md, "One runner").
"""

from __future__ import annotations

import os
from enum import StrEnum

from hypothesis import HealthCheck, Phase, settings

from cellverify.errors import InvalidConfig

__all__ = [
    "CI_EXAMPLES",
    "DEV_EXAMPLES",
    "PROFILES",
    "THOROUGH_EXAMPLES",
    "Profile",
    "current_profile",
    "default_profile",
    "register_profiles",
]

#: Fast local feedback: each example builds and trains a model (~0.3-1 s).
DEV_EXAMPLES = 10
#: The issue's bar for CI: at least 25 examples per invariant.
CI_EXAMPLES = 25
#: Nightly: many examples, and the full 15x100x3 shape is drawn too.
THOROUGH_EXAMPLES = 200


class Profile(StrEnum):
    """The Hypothesis settings profiles, by name."""

    DEV = "dev"
    CI = "ci"
    THOROUGH = "thorough"


PROFILES: tuple[str, ...] = tuple(p.value for p in Profile)

# Building a Keras model in the test body is slow next to Hypothesis's
# expectations for pure functions; the examples are deliberately expensive.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


def register_profiles() -> None:
    """Register the three profiles with Hypothesis (idempotent)."""
    settings.register_profile(
        "dev", max_examples=DEV_EXAMPLES, deadline=None, suppress_health_check=_SLOW_OK
    )
    settings.register_profile(
        "ci",
        max_examples=CI_EXAMPLES,
        derandomize=True,  # the same examples on every run and machine
        database=None,  # no state carried between runs
        deadline=None,  # shared CI machines are noisy; speed is benchmarked, not asserted
        print_blob=True,
        suppress_health_check=_SLOW_OK,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    settings.register_profile(
        "thorough",
        max_examples=THOROUGH_EXAMPLES,
        deadline=None,
        print_blob=True,
        suppress_health_check=_SLOW_OK,
    )


def default_profile() -> str:
    """``HYPOTHESIS_PROFILE`` if set, else ``ci`` under CI, else ``dev``."""
    name = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    if name not in PROFILES:
        raise InvalidConfig("HYPOTHESIS_PROFILE", "value", f"one of {', '.join(PROFILES)}", name)
    return name


def current_profile() -> str:
    """The name of the loaded profile (``dev`` if Hypothesis's default is in force)."""
    name = getattr(settings, "_current_profile", None)
    return name if name in PROFILES else "dev"
