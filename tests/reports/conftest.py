"""Fixtures of the report tests: a small phantom study measured once per session."""
from __future__ import annotations

import pytest

from tests.reports.factories import phantom_study


@pytest.fixture(scope="session")
def phantom_result(tmp_path_factory):
    """api.measure on a small CT phantom's true label map (report.html included)."""
    return phantom_study(tmp_path_factory.mktemp("phantom-study"))


@pytest.fixture(scope="session")
def phantom_report(phantom_result):
    return phantom_result.report
