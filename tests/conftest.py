"""Shared fixtures: the parity folder and the repository root."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARITY_DIR = ROOT.parent / "shared" / "parity"


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """``../shared/parity``; a skip when absent, a failure when FRD_REQUIRE_PARITY=1."""
    if not PARITY_DIR.is_dir():
        if os.environ.get("FRD_REQUIRE_PARITY") == "1":
            pytest.fail(f"{PARITY_DIR}: parity folder missing and FRD_REQUIRE_PARITY=1")
        pytest.skip(f"{PARITY_DIR} not present")
    return PARITY_DIR
