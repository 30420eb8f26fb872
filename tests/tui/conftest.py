"""Textual's pilot runs on asyncio; anyio's pytest plugin (no extra dependency) drives it."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
