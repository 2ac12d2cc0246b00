"""``s3://bucket/prefix`` (also ``s3a://``) through s3fs.

``storage_options`` go to ``s3fs.S3FileSystem``: ``endpoint_url`` (or
``client_kwargs={"endpoint_url": ...}``), ``key``/``secret``/``token``, ``profile``, ``anon``,
``config_kwargs`` ...; without them botocore's usual sources apply (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``,
``~/.aws``). distlog's own ``retry_attempts``/``retry_base_delay``/``retry_max_delay`` set
its retry loop (``distlog.storage.retry``).

Defaults this backend adds (each overridable): ``use_listings_cache=False`` — another
process's writes must be visible at once; botocore ``retries={"total_max_attempts": 1}``
— distlog's retry loop is the one that backs off, so retries do not multiply (s3fs still
retries dropped connections a few times within a call); and ``signature_version="s3v4"``.
zarr's own I/O (metric tables) uses the same options and the same retry loop
(``distlog.storage.zarrstore``). ``max_pool_connections`` (botocore's connection pool, 10 by
default) is raised to ``distlog.storage.aio.CONCURRENCY`` so that concurrent reads (a sweep
table over 1,000 runs) really are in flight together. Whole-object reads are one GET each
(``cat_kw``: s3fs would otherwise send a HEAD first to decide on ranged reads).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .aio import CONCURRENCY
from .fsspec_backend import MARKER_KEY, FsspecBackend, check_option_names


@contextmanager
def _precondition_means_exists(full: str) -> Iterator[None]:
    """s3fs maps a 412 to FileExistsError only when the error names the If-None-Match
    condition; a CompleteMultipartUpload 412 from some servers does not. Map every 412."""
    try:
        yield
    except FileExistsError:
        raise
    except OSError as e:
        cause = e.__cause__
        resp = getattr(cause, "response", None) or {}
        code = resp.get("Error", {}).get("Code")
        status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "PreconditionFailed" or status == 412:
            raise FileExistsError(f"s3://{full} already exists") from e
        raise


_UPLOAD_ID = "?uploadId="  # a multipart upload in ``leftover_temporaries``' names


class S3Backend(FsspecBackend):
    schemes = ("s3", "s3a")
    supports_signed_urls = True
    cat_kw = {"max_concurrency": 1}

    def _fs_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        opts.setdefault("use_listings_cache", False)
        config = dict(opts.get("config_kwargs") or {})
        config.setdefault("retries", {"total_max_attempts": 1})
        # SigV4 presigned URLs (botocore falls back to SigV2 query strings for some endpoints)
        config.setdefault("signature_version", "s3v4")
        config.setdefault("max_pool_connections", CONCURRENCY)
        opts["config_kwargs"] = config
        return opts

    def _make_fs(self, options: dict[str, Any]) -> Any:
        import s3fs

        # (its other keyword arguments make its aiobotocore session: profile=...)
        check_option_names(options, s3fs.S3FileSystem, "s3",
                           ("profile", "session_vars", "event_hooks", "include_builtin_handlers"))
        return s3fs.S3FileSystem(**options)

    def _put_new(self, full: str, data: bytes, marker: str) -> None:
        # PutObject with If-None-Match: * (s3fs >= 2024.10, botocore > 1.35.20)
        with _precondition_means_exists(full):
            self.fs.pipe_file(full, data, mode="create", Metadata={MARKER_KEY: marker})

    def _put_new_file(self, full: str, local_path: str, marker: str) -> None:
        # s3fs put_file honours mode="create": a single PutObject with If-None-Match below
        # 2 parts, else a multipart upload streamed part by part from the file whose
        # CompleteMultipartUpload carries If-None-Match — the object appears atomically, and
        # only if absent. (Files under 2 * part_size are read whole by s3fs.)
        with _precondition_means_exists(full):
            self.fs.put_file(local_path, full, mode="create", chunksize=self.part_size,
                             Metadata={MARKER_KEY: marker})

    def leftover_temporaries(self, path: str, older_than: float) -> list[str]:
        """Multipart uploads under ``path`` started before ``older_than`` and never completed
        or aborted (a writer killed mid-upload of a large file): S3 keeps and bills their
        parts until they are aborted, and no listing shows them. Named ``<key>?uploadId=<id>``."""
        bucket, _, prefix = self._p(path).partition("/")
        base = self._p().partition("/")[2]
        kw: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix.rstrip("/") + "/" if prefix else ""}
        out = []
        while True:
            page = self._retry(self.fs.call_s3, "list_multipart_uploads", **kw, op="list", path=path)
            for up in page.get("Uploads") or ():
                key, started = up.get("Key", ""), up.get("Initiated")
                if not key.startswith(kw["Prefix"]) or started is None or started.timestamp() >= older_than:
                    continue
                rel = key[len(base) + 1:] if base else key
                out.append(f"{rel}{_UPLOAD_ID}{up['UploadId']}")
            if not page.get("IsTruncated"):
                return sorted(out)
            kw["KeyMarker"], kw["UploadIdMarker"] = page.get("NextKeyMarker"), page.get("NextUploadIdMarker")

    def drop_temporary(self, name: str) -> None:
        path, sep, upload = name.partition(_UPLOAD_ID)
        if not sep:
            return super().drop_temporary(name)
        bucket, _, key = self._p(path).partition("/")
        self._retry(self.fs.call_s3, "abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload,
                    op="delete", path=path, writing=True)
        return None

    def _marker_of(self, full: str) -> str | None:
        return self.fs.metadata(full).get(MARKER_KEY)

    def get_url(self, path: str, expires: int = 3600) -> str:
        """A presigned GET URL (computed locally; ``https`` against AWS)."""
        return self._retry(self.fs.url, self._p(path), expires=int(expires), op="sign",
                           path=path)
