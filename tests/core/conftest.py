"""Every core test reads and writes the structure cache in a temporary folder, never ~/.cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _structure_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    before = os.environ.get("ICSG3D_CACHE_DIR")
    os.environ["ICSG3D_CACHE_DIR"] = str(tmp_path_factory.mktemp("structure-cache"))
    yield
    if before is None:
        os.environ.pop("ICSG3D_CACHE_DIR", None)
    else:
        os.environ["ICSG3D_CACHE_DIR"] = before
