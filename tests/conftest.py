import os
import sys

import pytest

# make `tests/` (the `support` package) importable as a top-level package in spawned ranks too
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("OMP_NUM_THREADS", "1")

# the object-store server fixtures, registered once for every module (one server per worker)
pytest_plugins = ["support.servers"]

# a test that uses one of these fixtures gets the service's marker without saying so, so
# `-m "not s3"` (and `make test-fast`) never starts a server it was meant to skip
SERVICE_MARKERS = {
    "moto_server": "s3", "s3_bucket": "s3",
    "fake_gcs_server": "gcs", "gcs_bucket": "gcs",
    "cluster": "slurm",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        have = {m.name for m in item.iter_markers()}
        for fixture in getattr(item, "fixturenames", ()):
            marker = SERVICE_MARKERS.get(fixture)
            if marker and marker not in have:
                item.add_marker(marker)
                have.add(marker)


@pytest.fixture
def root(tmp_path):
    """A fresh local root for one test."""
    return str(tmp_path / "root")
