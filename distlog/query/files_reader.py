"""A run's files table, read from every rank's manifest (the source of truth).

Each rank appends one JSON line per save to ``files/manifest-rank-RRRRR.jsonl`` (segments on
object stores); ``distlog.files.read_manifests`` reads them all. The bytes are a
content-addressed blob under the root (``distlog.cas.blob_path``). Reading the manifests rather
than the ``files.zarr`` table rank 0 merges at close works alike for a finished run, a running
one and one that died.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import IO, TYPE_CHECKING, Any, Callable

from ..cas import ContentStore
from ..files.index import check_version_rank, missing_version, one_per_version, pick_version
from ..writers.manifest import FileRecord, read_manifests
from ..storage.base import StorageBackend
from .errors import FileNotInRun, listing
from .series import ints_and_floats

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = tuple(FileRecord.__dataclass_fields__)


class FilesReader:
    """``run.files``: ``records()``, ``table()``, ``paths()``, ``find``, ``open``, ``read_bytes``, ``load``.

    A file is named by its path (``namespace/name``); a name without the namespace works
    when it is unique.
    """

    def __init__(self, storage: StorageBackend, root: Callable[[], StorageBackend]) -> None:
        self._storage = storage
        self._root = root
        # the manifests' segments read so far (object stores): each call reads only new ones
        self._seen: dict[str, bytes] = {}

    def records(self) -> list[FileRecord]:
        """Every save from every rank, oldest first (a torn last line is skipped). Read on
        every call (a live run's new saves show); on object stores only the manifest
        segments written since the last call are fetched."""
        return read_manifests(self._storage, self._seen)

    def table(self, latest: bool = False) -> "pd.DataFrame":
        """One row per save, oldest first; ``latest``: one row per path (sorted): its newest
        version as last saved.

        That row names the content ``load(path)`` reads (``sha256``, ``size``, ``version``)
        and its most recent save (``step``, ``time``, ``rank``, ``host``, ``attempt``): a
        config saved unchanged at steps 1 and 7 is one version whose row says step 7. Of
        saves at the same time, the lowest rank's."""
        import pandas as pd

        recs = self.records()
        if latest:
            recs = [_last_save(recs, p) for p in sorted({r.path for r in recs})]
        df = pd.DataFrame([asdict(r) for r in recs], columns=list(COLUMNS))
        steps = [r.step for r in recs]
        # steps as saved, as ``open_root().table()`` keeps a last step: pandas would make 3 a
        # 3.0 and 2**53 + 1 another number beside None or 2.75, and None a NaN
        if ints_and_floats(steps) or (any(s is None for s in steps) and any(s is not None for s in steps)):
            df["step"] = pd.Series(steps, dtype=object, index=df.index)
        return df

    def paths(self) -> list[str]:
        return sorted({r.path for r in self.records()})

    def find(self, name: str, version: int | None = None, rank: int | None = None, *,
             _call: str = "run.files.find") -> FileRecord:
        """The record of ``name`` (its newest version unless ``version`` is given: 1, 2, ...,
        or -1 for the newest, -2 for the one before, as ``exp.files``). Files saved under one
        name by several ranks: the lowest rank's, or ``rank``'s (its versions only) when given."""
        version, rank = check_version_rank(_call, name, version, rank)
        recs = self.records()
        paths = {r.path for r in recs}
        if name not in paths:
            by_name = sorted({r.path for r in recs if r.name == name})
            if len(by_name) != 1:
                what = f"; it is the name of {listing(by_name)}" if by_name else ""
                raise FileNotInRun(f"no file {name!r} in {self._storage.url}{what}; files: "
                                  f"{listing(sorted(paths))}")
            name = by_name[0]
        if rank is not None:
            ranks = sorted({r.rank for r in recs if r.path == name})
            if rank not in ranks:
                raise FileNotInRun(f"rank {rank} saved no file {name!r}; ranks: {listing(ranks)}")
        return _pick(recs, name, version, rank)

    def versions(self, name: str, rank: int | None = None) -> list[FileRecord]:
        """One record per version of ``name`` (the lowest rank's, or ``rank``'s), oldest first:
        what ``exp.files(...).versions(name)`` gives while the run is written."""
        path = self.find(name, None, rank, _call="run.files.versions").path
        return one_per_version([r for r in self.records() if r.path == path and (rank is None or r.rank == rank)])

    def open(self, name: str, version: int | None = None, rank: int | None = None) -> IO[bytes]:
        """A streaming binary reader of the file's bytes (``version``, ``rank``: as ``find``)."""
        return ContentStore(self._root()).open_record(self.find(name, version, rank, _call="run.files.open"))

    def read_bytes(self, name: str, version: int | None = None, rank: int | None = None) -> bytes:
        return ContentStore(self._root()).read_record(self.find(name, version, rank, _call="run.files.read_bytes"))

    def load(self, name: str, version: int | None = None, rank: int | None = None, **kw: Any) -> Any:
        """The file decoded as ``exp.files.load`` decodes it — by its extension, else by its
        recorded media type (``distlog.files.kinds``): JSON, YAML, text, NumPy (no pickles),
        torch (``weights_only=True`` unless given), images, audio and videos as arrays;
        anything else as bytes. Pickles are not unpickled here (that would run code from the
        store): their bytes come back; ``exp.files.load_pkl`` unpickles. ``version``,
        ``rank``: as ``find`` (a name several ranks saved: the lowest rank's by default)."""
        from ..files.kinds import decode, kind_of

        rec = self.find(name, version, rank, _call="run.files.load")
        store = ContentStore(self._root())
        if kind_of(rec.name, rec.media_type) == "pickle":
            return store.read_record(rec)
        return decode(kind_of(rec.name, rec.media_type), rec.name, lambda: store.open_record(rec), **kw)


def _pick(recs: list[FileRecord], path: str, version: int | None, rank: int | None = None) -> FileRecord:
    """The record of ``path`` at ``version`` (newest if None; the lowest rank's of equals, or
    ``rank``'s)."""
    everyone = [r for r in recs if r.path == path]
    mine = everyone if rank is None else [r for r in everyone if r.rank == rank]
    v = pick_version(sorted({r.version for r in mine}), version)
    if v is None:
        raise missing_version(path, version, rank, everyone)
    return min((r for r in mine if r.version == v), key=lambda r: (r.rank, r.time))


def _last_save(recs: list[FileRecord], path: str) -> FileRecord:
    """The most recent save of the content ``path`` reads by default (its newest version)."""
    shown = _pick(recs, path, None)
    same = [r for r in recs if r.path == path and r.version == shown.version and r.sha256 == shown.sha256]
    return max(same, key=lambda r: (r.time, -r.rank))
