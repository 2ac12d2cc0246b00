"""Storage backends behind one small ABC; resolved by URL scheme."""

from .base import Appender, SegmentAppender, StorageBackend
from .registry import open_storage, register_backend, known_schemes

__all__ = ["Appender", "SegmentAppender", "StorageBackend", "open_storage", "register_backend", "known_schemes"]
