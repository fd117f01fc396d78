"""Shared set-up for the dashboard tests: the fixture databases (built once), a private copy
per test that changes things, and no blinking cursor."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_tui.devtools.fixture import DB_NAME
from operator_tui.devtools.screenshots import build_fixtures, steady_cursor


@pytest.fixture(autouse=True)
def no_cursor_blink() -> Iterator[None]:
    with steady_cursor():
        yield


@pytest.fixture(scope="session")
def fixture_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """{observe: directory holding a fixture operator.db}, built once per session."""
    return build_fixtures(tmp_path_factory.mktemp("fixture"))


@pytest.fixture
def db_path(tmp_path: Path, fixture_dirs: dict[bool, Path]) -> Path:
    """A private copy of the fixture database, for tests that change it."""
    path = tmp_path / DB_NAME
    shutil.copy(fixture_dirs[False] / DB_NAME, path)
    return path


@pytest.fixture
def observe_db_path(tmp_path: Path, fixture_dirs: dict[bool, Path]) -> Path:
    path = tmp_path / DB_NAME
    shutil.copy(fixture_dirs[True] / DB_NAME, path)
    return path
