"""The retry classifier of the object-store backends (``distlog.storage.retry``): transient
failures are retried, permanent ones become a StorageError naming the fix, answers pass."""

from __future__ import annotations

from typing import Any

import pytest

from distlog.errors import StorageError


# ---- the retry classifier ------------------------------------------------------------------
def _client_error(code: str, status: int, op: str = "PutObject") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


def _translated(code: str, status: int) -> Exception:
    """The exception s3fs raises for a ClientError (builtin OSError, ClientError as cause)."""
    from s3fs.errors import translate_boto_error

    err = translate_boto_error(_client_error(code, status))
    assert err.__cause__ is not None
    return err


def _flaky(failures: list[Exception]) -> Any:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return "done"

    return fn, calls


@pytest.mark.parametrize("make", [
    lambda: _translated("SlowDown", 503),
    lambda: _translated("ServiceUnavailable", 503),
    lambda: _translated("InternalError", 500),
    lambda: _translated("ConditionalRequestConflict", 409),
    lambda: ConnectionResetError(104, "reset"),
    lambda: TimeoutError("timed out"),
], ids=["slowdown", "503", "500", "409-conflict", "reset", "timeout"])
def test_retrying_retries_transient_errors(make: Any) -> None:
    pytest.importorskip("s3fs")
    from distlog.storage.retry import retrying

    fn, calls = _flaky([make(), make()])
    assert retrying(fn, attempts=3, base_delay=0.001) == "done"
    assert calls["n"] == 3


@pytest.mark.parametrize("make,words", [
    (lambda: _translated("AccessDenied", 403), "access denied"),
    (lambda: _translated("InvalidAccessKeyId", 403), "access denied"),
    (lambda: _translated("NoSuchBucket", 404), "does not exist"),
    (lambda: __import__("botocore.exceptions").exceptions.NoCredentialsError(), "credentials"),
    (lambda: OSError("Forbidden: b/o\nno access"), "access denied"),  # gcsfs 403
], ids=["403", "bad-key", "no-bucket", "no-credentials", "gcs-403"])
def test_retrying_turns_permanent_errors_into_storage_error(make: Any, words: str) -> None:
    pytest.importorskip("s3fs")
    from distlog.storage.retry import retrying

    fn, calls = _flaky([make()])
    with pytest.raises(StorageError, match=words) as info:
        retrying(fn, attempts=5, base_delay=0.001, url="s3://b/p/x", op="write")
    assert "s3://b/p/x" in str(info.value)
    assert calls["n"] == 1  # not retried


@pytest.mark.parametrize("exc", [FileNotFoundError("k"), FileExistsError("k"), ValueError("v")])
def test_retrying_passes_answers_through(exc: Exception) -> None:
    from distlog.storage.retry import retrying

    fn, calls = _flaky([exc])
    with pytest.raises(type(exc)) as info:
        retrying(fn, attempts=5, base_delay=0.001)
    assert not isinstance(info.value, StorageError) and calls["n"] == 1


def test_retrying_gives_up_after_attempts() -> None:
    from distlog.storage.retry import retrying

    fn, calls = _flaky([ConnectionRefusedError(111, "refused")] * 5)
    with pytest.raises(StorageError, match="after 3 attempts"):
        retrying(fn, attempts=3, base_delay=0.001, url="gs://b/x")
    assert calls["n"] == 3


def test_unknown_scheme_lists_object_stores() -> None:
    from distlog.storage import known_schemes

    assert {"memory", "s3", "s3a", "gs", "gcs"} <= set(known_schemes())
