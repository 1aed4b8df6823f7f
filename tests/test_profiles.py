from __future__ import annotations

import pytest
from hypothesis import settings

from cellverify import InvalidConfig
from cellverify.checks.draws.profiles import CI_EXAMPLES, default_profile, register_profiles


def test_ci_profile_is_derandomized_without_database_or_deadline():
    register_profiles()
    ci = settings.get_profile("ci")
    assert ci.derandomize
    assert ci.database is None
    assert ci.deadline is None
    assert ci.max_examples == CI_EXAMPLES >= 25


def test_thorough_runs_more_examples_than_ci_and_dev_fewer():
    register_profiles()
    examples = {name: settings.get_profile(name).max_examples for name in ("dev", "ci", "thorough")}
    assert examples["dev"] < examples["ci"] < examples["thorough"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "dev"),
        ({"CI": "true"}, "ci"),
        ({"CI": "true", "HYPOTHESIS_PROFILE": "thorough"}, "thorough"),
    ],
)
def test_default_profile_follows_the_environment(monkeypatch, env, expected):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert default_profile() == expected


def test_unknown_profile_in_the_environment_is_rejected(monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "fast")
    with pytest.raises(InvalidConfig, match=r"one of dev, ci, thorough\. Received: value='fast'"):
        default_profile()
