"""Permanent errors: one clear ``StorageError`` naming the URL and the fix, at once.

A logger pointed at a bucket that does not exist fails when its run starts, with one
``StorageError`` that names the URL and says to create the bucket or fix the URL; it is not
retried (a handful of requests) and does not hang, on S3 and on GCS, in one process and on 2
gloo ranks. An unknown URL scheme raises ``UnknownScheme`` listing the known schemes; a known
scheme whose package is missing raises ``BackendNotInstalled`` with the pip command.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

import distlog
from distlog import BackendNotInstalled, StorageError, UnknownScheme



def _start_and_log(exp: Any) -> None:
    with exp.experiment("e"), exp.run("r"):
        exp.metrics.log(step=0, loss=1.0)
        exp.info("never written")


def _assert_clear(err: BaseException, url: str, bucket: str) -> None:
    msg = str(err)
    assert isinstance(err, StorageError), repr(err)
    assert url in msg, msg  # the URL the user passed (and the object under it)
    assert f"bucket '{bucket}' does not exist" in msg, msg
    assert "Create the bucket first or fix the URL" in msg, msg  # the fix


@pytest.mark.s3
@pytest.mark.timeout(60)
def test_missing_s3_bucket_is_one_clear_error_without_retries(moto_server: dict[str, Any],
                                                               capfd: Any) -> None:
    from support.faultproxy import FaultProxy
    from support.servers import s3_options

    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    url = f"s3://{bucket}/runs"
    with FaultProxy(moto_server["endpoint_url"], fail_rate=0.0) as counter:
        exp = distlog.get_logger(url, **{**s3_options(counter.url), "retry_attempts": 6})
        t0 = time.monotonic()
        with pytest.raises(StorageError) as info:
            _start_and_log(exp)
        elapsed = time.monotonic() - t0
    _assert_clear(info.value, url, bucket)
    assert elapsed < 10, elapsed
    # permanent: not retried (6 retries would be 7x these): the run-location checks, the run
    # record and the bucket probe, each asked once
    assert sum(counter.requests.values()) <= 6, counter.log
    # one error: nothing else was reported (no background writer, no retry chatter)
    assert "distlog:" not in capfd.readouterr().err
    # no run was left half open: the next use starts a new run and fails the same way
    with pytest.raises(StorageError, match="Create the bucket first"):
        exp.metrics.log(step=0, loss=1.0)


@pytest.mark.gcs
@pytest.mark.timeout(60)
def test_missing_gcs_bucket_is_one_clear_error(fake_gcs_server: dict[str, Any]) -> None:
    from support.servers import gcs_options

    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    url = f"gs://{bucket}/runs"
    exp = distlog.get_logger(url, **gcs_options(fake_gcs_server["endpoint_url"]))
    t0 = time.monotonic()
    with pytest.raises(StorageError) as info:
        _start_and_log(exp)
    _assert_clear(info.value, url, bucket)
    assert time.monotonic() - t0 < 20


def _rank_start(rank: int, world: int, url: str, options: dict[str, Any]) -> None:
    exp = distlog.get_logger(url, **options)
    _start_and_log(exp)


@pytest.mark.dist
@pytest.mark.s3
@pytest.mark.timeout(120)
def test_missing_bucket_on_two_ranks_fails_fast(tmp_path: Any, moto_server: dict[str, Any]) -> None:
    """Rank 0 (which reads and writes the run metadata) raises the StorageError and
    broadcasts it, so rank 1 raises the same error at once instead of waiting out the
    600 s flush timeout."""
    from support.ranks import run_ranks
    from support.servers import s3_options

    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    url = f"s3://{bucket}/runs"
    t0 = time.monotonic()
    (ok0, err0), (ok1, err1) = run_ranks(_rank_start, 2, tmp_path, url,
                                         s3_options(moto_server["endpoint_url"]), timeout=60,
                                         expect_failure=True)
    assert time.monotonic() - t0 < 60
    assert not ok0 and err0.startswith("StorageError: ")
    assert url in err0 and "Create the bucket first or fix the URL" in err0
    assert not ok1 and err1.startswith("StorageError: starting the run failed on rank 0"), err1
    assert url in err1 and "Create the bucket first or fix the URL" in err1


def test_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(UnknownScheme) as info:
        distlog.get_logger("ftp://host/runs")
    msg = str(info.value)
    assert "'ftp://'" in msg
    for scheme in ("file", "memory", "s3", "gs"):
        assert scheme in msg.split("known schemes:", 1)[1], msg
    assert isinstance(info.value, StorageError) and isinstance(info.value, ValueError)
    with pytest.raises(UnknownScheme):
        distlog.open_run("ftp://host/runs/e/r")  # the reader says the same


def test_missing_package_names_the_extra_to_install() -> None:
    from distlog.storage import registry

    registry.register_backend("fakecloud", "distlog_no_such_module_xyz:Backend", extra="s3")
    try:
        with pytest.raises(BackendNotInstalled, match=r"pip install 'distlog\[s3\]'") as info:
            distlog.get_logger("fakecloud://bucket/runs")
        assert "fakecloud://" in str(info.value)
    finally:
        registry._REGISTRY.pop("fakecloud", None)
