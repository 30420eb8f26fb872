"""Textual's pilot runs on asyncio; anyio's pytest plugin (no extra dependency) drives it.
``home``: a LITLAB_HOME whose library holds the papers the tests make."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrievers.library import Library


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(papers_dir: Path) -> Path:
    home = Path(os.environ["LITLAB_HOME"])
    lib = Library(home)
    assert lib.index_files([papers_dir]).ok
    lib.close()
    return home
