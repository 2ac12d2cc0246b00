"""URL scheme → backend class, imported on first use (like fsspec's registry)."""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..errors import BackendNotInstalled, UnknownScheme
from .base import StorageBackend

# scheme -> ("module:Class", pip extra that provides its dependencies, or None)
_REGISTRY: dict[str, tuple[str, str | None]] = {
    "file": ("distlog.storage.local:LocalBackend", None),
    "local": ("distlog.storage.local:LocalBackend", None),
    "memory": ("distlog.storage.memory:MemoryBackend", None),
    "s3": ("distlog.storage.s3:S3Backend", "s3"),
    "s3a": ("distlog.storage.s3:S3Backend", "s3"),
    "gs": ("distlog.storage.gcs:GCSBackend", "gcs"),
    "gcs": ("distlog.storage.gcs:GCSBackend", "gcs"),
}


def register_backend(scheme: str, target: str, extra: str | None = None) -> None:
    """Register ``target`` (``"package.module:Class"``) for URLs starting ``scheme://``."""
    _REGISTRY[scheme] = (target, extra)


def known_schemes() -> list[str]:
    return sorted(_REGISTRY)


def split_scheme(url: str) -> tuple[str, str]:
    """``"s3://b/p"`` → ``("s3", "s3://b/p")``; a plain path is ``file``."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        return scheme, url
    return "file", url


def backend_class(scheme: str) -> type[StorageBackend]:
    try:
        target, extra = _REGISTRY[scheme]
    except KeyError:
        raise UnknownScheme(
            f"no storage backend for '{scheme}://'; known schemes: {', '.join(known_schemes())}. "
            "Use a local path or one of those URLs, or register_backend() your own."
        ) from None
    module, _, cls = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        hint = f"pip install 'distlog[{extra}]'" if extra else "reinstall distlog"
        raise BackendNotInstalled(
            f"'{scheme}://' URLs need a package that is not installed ({e.name or e}); "
            f"install it with: {hint}"
        ) from e
    return getattr(mod, cls)


def open_storage(url: "str | os.PathLike[str] | StorageBackend", **storage_options: Any) -> StorageBackend:
    """The backend for ``url``, rooted there. ``storage_options`` go to the filesystem.

    A ``StorageBackend`` object is used as it is (it was opened with its options already).
    """
    if isinstance(url, StorageBackend):
        if storage_options:
            raise TypeError(
                f"open_storage({url!r}, ...): storage options {sorted(storage_options)} given with a "
                "StorageBackend object, which already has its options. Pass either a URL with "
                "options, or the backend alone.")
        return url
    if not isinstance(url, (str, os.PathLike)):
        raise TypeError(
            f"expected a root path or URL (str, os.PathLike) or a StorageBackend, got "
            f"{type(url).__name__}: {url!r}")
    scheme, url = split_scheme(os.fspath(url))
    return backend_class(scheme)(url, **storage_options)
