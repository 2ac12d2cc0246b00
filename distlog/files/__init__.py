"""``exp.files``: artifacts (checkpoints, arrays, media, any file), deduplicated by content.

Bytes go to the root's content-addressed store (``distlog.cas``): identical bytes saved by
any rank, run or node are stored once. Each save — from any rank, with no collective — is
one JSON line appended to this rank's manifest in the run folder::

    files/manifest-rank-RRRRR.jsonl   {"path", "name", "namespace", "sha256", "size",
                                       "media_type", "rank", "host", "step", "time",
                                       "version", "attempt"}   (one object per line)

The manifests are the source of truth. When the run closes, rank 0 merges every rank's
manifest into the run's files table (``files.zarr`` + ``files.commit.json``, see
``write_files_table``).

Versions number the *distinct contents* of one path (``namespace/name``). A save gets the
latest version's number when its bytes equal that version's, else the next number (1 for a
new path). "Latest" is taken from every rank's manifest as this rank sees it (each record is
flushed when written), so N ranks saving the same checkpoint make one version with N records,
and saves made one after another, from any rank, number 1, 2, 3, ... Each number is claimed
with an exclusive create (``index.version_claim_path``), so ranks saving *different* bytes
under one name at the same moment get different numbers: a version names one content.
Still, give per-rank files per-rank names.

Safety: loading a pickle (``load_pkl``, ``load`` of ``.pkl`` or pickled data) runs code from
the store — only load what you trust. Torch loads use ``weights_only=True`` unless the
caller passes ``weights_only=False``.

The package: ``manifest`` (the record, its parser, the files table), ``kinds`` (encoders and
decoders by extension), ``index`` (every rank's records, tailed), ``logger`` (``ArtifactLogger``,
i.e. ``exp.files``), ``ordering`` (frame orders for ``make_video``).
"""

from __future__ import annotations

from .kinds import media_type_of
from .logger import ArtifactLogger
from ..writers.manifest import (
    MANIFEST_DIR,
    TABLE_CHUNK,
    TABLE_COLUMNS,
    TABLE_NAME,
    FileRecord,
    manifest_names,
    manifest_path,
    parse_manifest,
    read_manifests,
    write_files_table,
)

__all__ = [
    "ArtifactLogger", "FileRecord", "MANIFEST_DIR", "TABLE_CHUNK", "TABLE_COLUMNS", "TABLE_NAME",
    "manifest_names", "manifest_path", "media_type_of", "parse_manifest", "read_manifests",
    "write_files_table",
]
