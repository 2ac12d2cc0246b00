import os
import sys

import pytest

# make `tests/` helpers importable as top-level modules in spawned ranks too
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def root(tmp_path):
    """A fresh local root for one test."""
    return str(tmp_path / "root")
