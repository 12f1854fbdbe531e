"""Skip or fail: on a developer machine a missing part skips its tests; under CI=true it fails the run."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True under CI (CI=true, as GitHub Actions, GitLab and .ci/run set it): skipping is then a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skip_or_fail(reason: str, what: str = "these tests") -> NoReturn:
    """Skip locally, where the part may just not be installed; fail in CI, where it must be."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: {what} must run, not skip)", pytrace=False)
    pytest.skip(reason)
