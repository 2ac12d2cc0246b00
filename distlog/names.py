"""Validation of user-supplied names: nothing is written outside the root, and nothing that a
backend, Zarr or distlog's own layout would trip on later (in the background writer, where a
bad name can only fail the run) is accepted.

Every rule is checked where the name enters (``experiment()``, ``run()``, ``metrics(ns)``,
``log(key=...)``, ``files(ns)``, ``save(name)``) and raises ``ValueError`` naming the argument,
the value, the limit and the fix. The rules depend on the *place* (the ``what`` label):

=====================  ==================================================================
place                  rules on top of the common ones
=====================  ==================================================================
experiment name        ``/`` nests; each part not hidden (``.x``), not ``run.json``, not
                       ``*.seg``; at most 255 bytes and 7 parts in all; a run folder never
                       sits inside another run (``check_run_location``)
run id                 one part; not hidden, not ``run.json``, not ``*.seg``
metric key, metrics    ``/`` nests (Zarr groups); each part not hidden (``.zattrs``,
namespace, histogram   ``...``), not ``zarr.json``, not ``run.json``, not ``__x`` (reserved
name                   by Zarr v3); at most 255 bytes for the whole key
files namespace,       ``/`` nests; a logical path only (kept in manifests, never a storage
file name              key), so hidden names are fine; at most 1,024 bytes in all
=====================  ==================================================================

Common to every place: a ``str``; not empty; no ``\\``, no control characters (C0, DEL, C1,
bidirectional overrides), no unpaired surrogates; parts not ``.``/``..``, not empty, no
leading or trailing whitespace; every ``/``-separated part at most 255 bytes of UTF-8
(NAME_MAX of every local file system, and the segment limit object-store tools assume).
Where the name becomes a storage path (experiment, run id, metric keys) also no trailing
``.`` (Windows and SMB drop it) and no ``*``, ``?``, ``[``, ``]`` (fsspec expands them as
globs when deleting on object stores).

Windows device names (``CON``, ``AUX``, ...) are allowed: roots are POSIX folders or object
stores, and ``aux`` is a common metric name.

The total stored key is checked once per run by ``check_run_location``: the run folder's
path, root included, plus the longest path distlog writes inside a run must fit in
``KEY_MAX_BYTES`` (1,024 bytes, the S3 and GCS object-key limit).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .layout import ATTEMPTS_DIR, RUN_FILE, RUN_MARKERS, is_attempt_claim
from .storage.base import SEGMENT_SUFFIX

if TYPE_CHECKING:
    from .storage.base import StorageBackend

#: bytes of UTF-8 in one ``/``-separated part (NAME_MAX on Linux, macOS, Windows)
SEGMENT_MAX_BYTES = 255
#: bytes in a whole experiment name (all its parts)
EXPERIMENT_MAX_BYTES = 255
#: parts of an experiment name; readers scan 8 levels below the root (parts + run id)
EXPERIMENT_MAX_PARTS = 7
#: bytes in a whole metric key (namespaces included)
METRIC_KEY_MAX_BYTES = 255
#: bytes in a files namespace plus file name (the logical path of an artifact)
FILE_PATH_MAX_BYTES = 1024
#: the longest object key a backend must accept: S3 and GCS allow 1,024 bytes
KEY_MAX_BYTES = 1024
#: room kept for the longest path distlog writes inside a run folder:
#: ``ranks/rank-RRRRR/histograms.zarr/<metric key>/c.<chunk>.0``
RUN_LAYOUT_MAX_BYTES = 64 + METRIC_KEY_MAX_BYTES


#: C0, DEL, C1 and the bidirectional overrides (which make a listed name read as another)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_GLOB = re.compile(r"[*?\[\]]")

_RUN_PATH = frozenset({"experiment name", "run id"})
_ZARR_KEY = frozenset({"metric key", "metrics namespace", "histogram name"})
_FILE_PATH = frozenset({"files namespace", "file name"})


def short(value: str, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters with its length in bytes."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value.encode('utf-8', 'surrogatepass'))} bytes)"


def _nbytes(value: str) -> int:
    return len(value.encode("utf-8"))


def check_name(value: object, what: str, *, allow_slash: bool = False) -> str:
    """Return ``value`` if it is a valid name for the place ``what``, else raise ``ValueError``.

    ``what`` names the argument in the message and selects the place's rules (see the module
    docstring): ``"experiment name"``, ``"run id"``, ``"metric key"``, ``"metrics namespace"``,
    ``"histogram name"``, ``"files namespace"``, ``"file name"``; another label gets the
    common rules only. With ``allow_slash`` the name may have several ``/``-separated parts.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} ({value!r})")
    if not value or not value.strip():
        raise ValueError(f"{what} must not be empty; give a short name such as 'baseline'")
    if value.startswith("/"):
        raise ValueError(f"{what} {short(value)} is absolute; give a path relative to the root")
    if "\\" in value:
        raise ValueError(f"{what} {short(value)} contains '\\'; use '/' to nest, or '-', '_'")
    if _CONTROL.search(value):
        raise ValueError(f"{what} {short(value)} contains control characters; use printable names")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {short(value)} is not valid Unicode (an unpaired surrogate); "
                         "decode it properly first") from None
    if "/" in value and not allow_slash:
        raise ValueError(f"{what} {short(value)} contains '/'; path separators are not allowed here")
    parts = value.split("/")
    for part in parts:
        _check_part(value, part, what)
    _check_total(value, parts, what)
    return value


def _check_part(value: str, part: str, what: str) -> None:
    if part in ("", ".", ".."):
        raise ValueError(f"{what} {short(value)} has an empty, '.' or '..' part; "
                         "each '/'-separated part must be a plain name")
    if part != part.strip():
        raise ValueError(f"{what} {short(value)}: part {short(part)} starts or ends with "
                         "whitespace; strip it")
    n = _nbytes(part)
    if n > SEGMENT_MAX_BYTES:
        raise ValueError(f"{what} {short(value)}: part {short(part, 30)} is {n} bytes of UTF-8, "
                         f"over the {SEGMENT_MAX_BYTES}-byte limit of a path part on every "
                         "backend; shorten it (or split it with '/' where nesting is allowed)")
    if what in _FILE_PATH:
        return
    storage_path = what in _RUN_PATH or what in _ZARR_KEY
    if storage_path and part.startswith("."):
        hint = ("'.distlog' holds the root's blob store; readers and `distlog gc` skip hidden "
                "folders" if what in _RUN_PATH else "Zarr v2 metadata ('.zarray', '.zattrs', "
                "'.zgroup', '.zmetadata') and hidden files use such names")
        raise ValueError(f"{what} {short(value)}: part {short(part)} starts with '.' ({hint}); "
                         "remove the leading '.'")
    if storage_path and part.endswith("."):
        raise ValueError(f"{what} {short(value)}: part {short(part)} ends with '.', which "
                         "Windows and SMB shares drop; remove the trailing '.'")
    if storage_path and _GLOB.search(part):
        raise ValueError(f"{what} {short(value)} contains one of * ? [ ], which fsspec expands "
                         "as a glob on object stores; use '-' or '_' instead")
    if part == RUN_FILE:
        raise ValueError(f"{what} {short(value)}: {RUN_FILE!r} is reserved (a folder holding "
                         "it is a run, and `distlog gc` refuses folders of that name); choose "
                         "another name")
    if what in _RUN_PATH:
        if part.endswith(SEGMENT_SUFFIX):
            raise ValueError(f"{what} {short(value)}: part {short(part)} ends with "
                             f"{SEGMENT_SUFFIX!r}, reserved for the segments of appended files "
                             "on object stores; choose another name")
    if what in _ZARR_KEY:
        if part == "zarr.json":
            raise ValueError(f"{what} {short(value)}: 'zarr.json' is reserved by Zarr (the "
                             "metadata of the group that holds the series); choose another name")
        if part.startswith("__"):
            raise ValueError(f"{what} {short(value)}: part {short(part)} starts with '__', "
                             "reserved by the Zarr v3 specification; remove the leading '__'")


def _check_total(value: str, parts: list[str], what: str) -> None:
    n = _nbytes(value)
    if what == "experiment name":
        if len(parts) > EXPERIMENT_MAX_PARTS:
            raise ValueError(f"experiment name {short(value)} has {len(parts)} '/'-separated "
                             f"parts, over the limit of {EXPERIMENT_MAX_PARTS} (readers scan "
                             f"{EXPERIMENT_MAX_PARTS + 1} levels below the root); nest less")
        limit = EXPERIMENT_MAX_BYTES
    elif what in _ZARR_KEY:
        limit = METRIC_KEY_MAX_BYTES
    elif what in _FILE_PATH:
        limit = FILE_PATH_MAX_BYTES
    else:
        return
    if n > limit:
        raise ValueError(f"{what} {short(value)} is {n} bytes of UTF-8, over the {limit}-byte "
                         "limit (the whole name, namespaces included); shorten it")


def check_run_location(root: "StorageBackend", experiment: str, run_id: str) -> None:
    """Refuse a run folder that would be too long for an object key, sit inside another run,
    or turn an experiment folder into a run (each would hide runs from readers and gc).

    Called once per run start on rank 0: one existence probe per experiment part, one
    listing of the run folder when it holds no ``run.json`` yet.
    """
    folder = f"{experiment}/{run_id}"
    key = f"{root.root}/{folder}"
    longest = _nbytes(key) + 1 + RUN_LAYOUT_MAX_BYTES
    if longest > KEY_MAX_BYTES:
        raise ValueError(
            f"experiment name and run id {short(folder)} are too long for this root: the run "
            f"folder {short(key)} is {_nbytes(key)} bytes, and with room for the run's own "
            f"files ({RUN_LAYOUT_MAX_BYTES} bytes) its longest object key would be {longest} "
            f"bytes, over the {KEY_MAX_BYTES}-byte key limit of object stores; use a shorter "
            "experiment name or run id (or a shorter root)")
    parts = experiment.split("/")
    for i in range(1, len(parts) + 1):
        above = "/".join(parts[:i])
        if root.exists(f"{above}/{RUN_FILE}"):
            raise ValueError(
                f"experiment name {short(experiment)} would put run {short(run_id)} inside the "
                f"run {short(above)} (it holds {RUN_FILE}); runs cannot nest, choose an "
                "experiment name that does not start with an existing run's path")
    entries = set() if root.exists(f"{folder}/{RUN_FILE}") else {n.rstrip("/") for n in root.list_dir(folder)}
    if entries and not (entries == {ATTEMPTS_DIR} and all(
            is_attempt_claim(n) for n in root.list_dir(f"{folder}/{ATTEMPTS_DIR}"))):
        # (a folder holding only attempt claims is a run another process is starting now, or
        # whose start died before it wrote run.json: ``claims`` decides)
        if entries & RUN_MARKERS:
            # (what only a run folder holds: a run whose run.json is missing, as readers judge it)
            raise ValueError(
                f"run id {short(run_id)}: {short(folder)} is a run folder whose {RUN_FILE} is "
                f"missing (it holds {', '.join(sorted(entries)[:6])}): a new attempt cannot "
                f"continue it. Restore its {RUN_FILE} from a copy of the run, or choose another run id")
        raise ValueError(
            f"run id {short(run_id)}: {short(folder)} already exists as an experiment folder "
            "(it holds other runs or files but no run.json); choose another run id")
