"""Retry transient object-store failures; turn permanent ones into one clear ``StorageError``.

Every primitive of the object-store backends runs through :func:`retrying`, and every call
of the zarr stores they hand out through :func:`aretrying` (``distlog.storage.zarrstore``).
Three outcomes:

* **transient** (HTTP 5xx, 408, 429, ``SlowDown``, S3 409 ``ConditionalRequestConflict``,
  connection reset/refused/closed mid-request, timeouts): sleep with exponential backoff and
  jitter, try again; after the last attempt raise ``StorageError`` naming the URL.
* **permanent** (no such bucket, 401/403 access denied, missing or bad credentials): raise
  ``StorageError`` at once, naming the URL and the fix.
* anything else (``FileNotFoundError`` for a missing key, ``FileExistsError`` from an exclusive
  create, ``ValueError`` ...) propagates unchanged: it is an answer, not a failure.

The libraries raise these shapes (checked against s3fs 2026.9 / aiobotocore 3.10 / gcsfs 2026.10):

* s3fs translates a botocore ``ClientError`` into a builtin ``OSError`` subclass
  (``FileNotFoundError`` for NoSuchKey *and* NoSuchBucket, ``PermissionError`` for AccessDenied,
  ``OSError(EBUSY)`` for 503 ...) and keeps the ``ClientError`` as ``__cause__``; its code and
  HTTP status decide. Network failures arrive as botocore ``HTTPClientError`` /
  ``ConnectionError`` (``EndpointConnectionError``, ``ConnectionClosedError``) untranslated.
* gcsfs raises ``gcsfs.retry.HttpError`` (``.code``) for 5xx/429, ``FileNotFoundError`` for
  404, ``FileExistsError`` for 412, a plain ``OSError("Forbidden: ...")`` for 403,
  ``requests.exceptions.ProxyError`` for 502, and ``aiohttp.ClientError`` on the wire.

The optional packages are matched by duck typing and lazy imports, so this module imports
nothing heavy and works with whichever backends are installed.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import random
import time
from functools import lru_cache
from typing import Any, Awaitable, Callable, TypeVar

from ..errors import StorageError

T = TypeVar("T")

TRANSIENT = "transient"
PERMANENT = "permanent"
OTHER = "other"

# S3 error codes (ClientError.response["Error"]["Code"])
_TRANSIENT_CODES = {
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
    "ConditionalRequestConflict", "OperationAborted", "XAmzContentSHA256Mismatch",
}
_BUCKET_CODES = {"NoSuchBucket"}
_ACCESS_CODES = {
    "AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId",
    "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
    "NotSignedUp", "InvalidPayer",
}
_TRANSIENT_STATUS = {408, 429}
_TRANSIENT_ERRNOS = {errno.EBUSY, errno.EAGAIN, errno.ETIMEDOUT, getattr(errno, "EREMOTEIO", -1)}


def _classes(module: str, *names: str) -> list[type]:
    """The named exception classes of an optional module; [] when it is not installed."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return []
    return [c for c in (getattr(mod, n, None) for n in names) if isinstance(c, type)]


@lru_cache(maxsize=1)
def _library_types() -> dict[str, tuple[type, ...]]:
    """Exception classes of the optional libraries that are installed."""
    transient = [
        ConnectionError, TimeoutError,
        # ClientResponseError (a ClientError) is decided by its status before this applies
        *_classes("aiohttp", "ClientError"),
        *_classes("botocore.exceptions", "HTTPClientError", "ConnectionError"),
        *_classes("botocore.parsers", "ResponseParserError"),  # throttled S3 sends bad XML
        *_classes("requests.exceptions", "ConnectionError", "Timeout", "ChunkedEncodingError"),
    ]
    credentials = [
        *_classes("botocore.exceptions", "NoCredentialsError", "PartialCredentialsError",
                  "ProfileNotFound", "CredentialRetrievalError"),
        *_classes("google.auth.exceptions", "DefaultCredentialsError", "RefreshError"),
    ]
    return {"transient": tuple(transient), "credentials": tuple(credentials)}


def _chain(exc: BaseException) -> list[BaseException]:
    out, seen = [], set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out.append(e)
        e = e.__cause__
    return out


def _http_status(e: BaseException) -> int | None:
    resp = getattr(e, "response", None)
    if isinstance(resp, dict):  # botocore ClientError
        status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status else None
    for attr in ("status", "code"):  # aiohttp ClientResponseError.status, gcsfs HttpError.code
        v = getattr(e, attr, None)
        if isinstance(v, int) and 100 <= v < 600 and type(e).__module__.split(".")[0] in (
            "aiohttp", "gcsfs",
        ):
            return v
    return None


def _s3_code(e: BaseException) -> str | None:
    resp = getattr(e, "response", None)
    if isinstance(resp, dict):
        return resp.get("Error", {}).get("Code")
    return None


def classify(exc: BaseException, writing: bool = False) -> tuple[str, str]:
    """``(TRANSIENT | PERMANENT | OTHER, reason)`` for an exception raised by a store call.

    ``writing``: the call writes an object; a ``FileNotFoundError`` then can only mean that
    the bucket is missing (gcsfs reports a missing bucket on upload as a bare 404).
    """
    if isinstance(exc, (FileExistsError, IsADirectoryError, NotADirectoryError)):
        return OTHER, ""
    answered = False  # the server gave a definite 4xx answer (NoSuchKey, NoSuchUpload, 412)
    for e in _chain(exc):
        code, status = _s3_code(e), _http_status(e)
        if code in _BUCKET_CODES:
            return PERMANENT, "bucket"
        if code in _ACCESS_CODES or status in (401, 403):
            return PERMANENT, "access"
        if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS or (status or 0) >= 500:
            return TRANSIENT, code or f"HTTP {status}"
        if status is not None:  # another 4xx (404 NoSuchKey, 412 precondition): an answer
            answered = code is not None
            break
        # library classes only matter for library exceptions (and importing them is slow)
        lib = (_library_types() if type(e).__module__ != "builtins"
               else {"credentials": (), "transient": (ConnectionError, TimeoutError)})
        if isinstance(e, lib["credentials"]):
            return PERMANENT, "credentials"
        if type(e) is OSError and str(e).startswith("Forbidden"):  # gcsfs 403
            return PERMANENT, "access"
        if isinstance(e, PermissionError):
            return PERMANENT, "access"
        if isinstance(e, lib["transient"]):
            return TRANSIENT, type(e).__name__
        if type(e) is OSError and e.errno in _TRANSIENT_ERRNOS:
            return TRANSIENT, errno.errorcode.get(e.errno or 0, "OSError")
    if writing and isinstance(exc, FileNotFoundError) and not answered:
        return PERMANENT, "bucket"
    return OTHER, ""


def _bucket_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def permanent_message(exc: BaseException, reason: str, url: str, op: str) -> str:
    detail = f"{type(exc).__name__}: {exc}"
    if reason == "bucket":
        b = _bucket_of(url)
        return (
            f"{op} {url}: the bucket '{b}' does not exist ({detail}). "
            f"Create the bucket first or fix the URL."
        )
    if reason == "credentials":
        return (
            f"{op} {url}: no usable credentials ({detail}). Pass them in storage_options "
            "(S3: key/secret or profile, or anon=True for public data; GCS: token=<service-account "
            "JSON path> or token='anon'), or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or GOOGLE_APPLICATION_CREDENTIALS."
        )
    return (
        f"{op} {url}: access denied ({detail}). Check that the credentials are valid and "
        "allowed to read and write this bucket (key/secret, profile, token, bucket policy/IAM)."
    )


def _after_failure(e: Exception, i: int, *, attempts: int, base_delay: float, max_delay: float,
                   url: str, op: str, writing: bool) -> float | None:
    """After attempt ``i`` failed with ``e``: the delay before the next attempt, or None when
    ``e`` is an answer to re-raise as is. Raises ``StorageError`` when giving up."""
    kind, reason = classify(e, writing=writing)
    if kind == PERMANENT:
        raise StorageError(permanent_message(e, reason, url, op)) from e
    if kind != TRANSIENT:
        return None
    if i == attempts - 1:
        raise StorageError(
            f"{op} {url}: still failing after {attempts} attempts with transient "
            f"errors (last: {reason}: {type(e).__name__}: {e}). The store or the "
            "network is unavailable or throttling; check the endpoint and try again "
            "later, or raise retry_attempts in storage_options."
        ) from e
    d = min(max_delay, base_delay * 2**i)
    return d / 2 + random.uniform(0, d / 2)


def retrying(
    fn: Callable[..., T],
    *args: Any,
    attempts: int = 6,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    url: str = "",
    op: str = "",
    writing: bool = False,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, retried on transient failures with backoff and jitter.

    The delay before retry ``i`` (0-based) is drawn from ``[d/2, d]`` with
    ``d = min(max_delay, base_delay * 2**i)``: exponential, but spread out so that many ranks
    failing together do not come back together. ``fn`` must be safe to repeat: the backends
    make each attempt idempotent (exclusive creates recognise their own earlier write).
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    op = op or getattr(fn, "__name__", "call")
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            delay = _after_failure(e, i, attempts=attempts, base_delay=base_delay,
                                   max_delay=max_delay, url=url, op=op, writing=writing)
            if delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def aretrying(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    attempts: int = 6,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    url: str = "",
    op: str = "",
    writing: bool = False,
    **kwargs: Any,
) -> T:
    """``await fn(*args, **kwargs)`` with the retries of :func:`retrying` (for zarr's async
    store calls, which run on zarr's event loop: the backoff sleeps without blocking it)."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    op = op or getattr(fn, "__name__", "call")
    for i in range(attempts):
        try:
            return await fn(*args, **kwargs)
        except Exception as e:
            delay = _after_failure(e, i, attempts=attempts, base_delay=base_delay,
                                   max_delay=max_delay, url=url, op=op, writing=writing)
            if delay is None:
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
