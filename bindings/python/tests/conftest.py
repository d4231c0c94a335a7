from __future__ import annotations

from pathlib import Path

import pytest

import keyval


@pytest.fixture
def db(tmp_path: Path):
    store = keyval.open(tmp_path / "db", segment_size=64 << 10)
    yield store
    store.close()
