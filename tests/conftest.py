"""Shared fixtures. ``shared_data`` locates ../shared/data and skips with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FAKESCOPE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "dfdc-faces" / "manifest.csv").is_file():
        pytest.skip(
            f"real data not found at {SHARED_DATA} (set FAKESCOPE_SHARED_DATA or clone beside ../shared)"
        )
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _few_threads(monkeypatch):
    # Two cores here: keep tests from oversubscribing when pytest itself is the only job.
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
