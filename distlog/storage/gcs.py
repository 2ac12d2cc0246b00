"""``gs://bucket/prefix`` (also ``gcs://``) through gcsfs.

``storage_options`` go to ``gcsfs.GCSFileSystem``: ``token`` (a service-account JSON path or
dict, ``"google_default"``, ``"anon"`` ...), ``project``, ``endpoint_url``. An emulator is
used when ``endpoint_url`` or ``STORAGE_EMULATOR_HOST`` is set; then ``token`` defaults to
``"anon"`` (emulators take none, and gcsfs would otherwise probe the GCE metadata server).
Also defaulted: ``use_listings_cache=False`` (other processes' writes visible at once).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from .fsspec_backend import MARKER_KEY, FsspecBackend, check_option_names

# gcsfs 2026.x enables an experimental zonal/HNS code path by default that retries a gRPC
# call for a long time against emulators; it must be off before gcsfs is first imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def _emulated(options: dict[str, Any]) -> bool:
    return bool(options.get("endpoint_url")) or os.environ.get(
        "STORAGE_EMULATOR_HOST", ""
    ) not in ("", "default")


class GCSBackend(FsspecBackend):
    schemes = ("gs", "gcs")
    supports_signed_urls = True  # when the credentials can sign (service account)
    # gcsfs already retries 5xx/429/connection errors 6 times (1, 2, 4, 8, 16 s apart)
    # inside each call; a few outer attempts are enough
    retry_defaults = {"attempts": 3, "base_delay": 1.0, "max_delay": 10.0}

    def _fs_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        opts.setdefault("use_listings_cache", False)
        if "token" not in opts and _emulated(opts):
            opts["token"] = "anon"
        return opts

    def _make_fs(self, options: dict[str, Any]) -> Any:
        import gcsfs

        check_option_names(options, gcsfs.GCSFileSystem, "gs")
        token = options.get("token")
        if isinstance(token, (str, os.PathLike)) and os.path.splitext(os.fspath(token))[1] == ".json" \
                and not os.path.exists(token):
            # (gcsfs took a missing file's path for an access token and checked it with Google)
            raise FileNotFoundError(
                f"gs:// storage option token={os.fspath(token)!r}: no such service-account JSON file; "
                "give the path of one that exists, token='google_default' (application default "
                "credentials), or token='anon' (public data, emulators)")
        return gcsfs.GCSFileSystem(**options)

    def missing_bucket(self) -> str | None:
        bucket = self._base.split("/", 1)[0]
        try:
            found = self._retry(self.fs.exists, bucket, op="exists")
        except Exception:  # noqa: BLE001 - the caller's own answer stands
            return None
        return None if found else bucket

    def _put_new(self, full: str, data: bytes, marker: str) -> None:
        # one multipart upload with ifGenerationMatch=0: GCS answers 412, gcsfs raises
        # FileExistsError
        self.fs.pipe_file(full, data, mode="create", metadata={MARKER_KEY: marker})

    def _put_new_file(self, full: str, local_path: str, marker: str) -> None:
        # Under 5 MiB gcsfs sends one multipart upload; above, a resumable upload streamed in
        # part_size pieces whose initiation carries ifGenerationMatch=0, which GCS checks when
        # the object is finalized. (fake-gcs-server ignores the precondition on resumable
        # uploads — and on rewrites — so only files under 5 MiB race safely there; the
        # exists() check in create_file still answers False for an object already present.)
        self.fs.put_file(local_path, full, mode="create", chunksize=self.part_size,
                         metadata={MARKER_KEY: marker})

    def _marker_of(self, full: str) -> str | None:
        return (self.fs.info(full).get("metadata") or {}).get(MARKER_KEY)

    def get_url(self, path: str, expires: int = 3600) -> str:
        """A V4 signed HTTPS URL when the credentials can sign, else the ``gs://`` URL."""
        full = self._p(path)
        creds = getattr(getattr(self.fs, "credentials", None), "credentials", None)
        try:
            from google.auth.credentials import Signing
        except ImportError:  # pragma: no cover - google-auth comes with gcsfs
            Signing = ()  # type: ignore[assignment,misc]
        if not isinstance(creds, Signing):
            return f"gs://{full}"
        # Signing is local (the private key). gcsfs.sign() would build a storage.Client with
        # the filesystem's project, which is often empty and then looked up through
        # google.auth.default() — a network probe; give the client a project explicitly.
        from google.cloud import storage

        project = self.fs.project or getattr(creds, "project_id", None) or "distlog"
        bucket, key, _ = self.fs.split_path(full)
        blob = storage.Client(project=project, credentials=creds).bucket(bucket).blob(key)
        return blob.generate_signed_url(
            version="v4",
            expiration=timedelta(seconds=int(expires)),
            method="GET",
            api_access_endpoint=self.fs._endpoint or None,
        )
