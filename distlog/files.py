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
and saves made one after another, from any rank, number 1, 2, 3, ... Ranks saving
*different* bytes under one name at the same moment may claim the same number; ``load``
then prefers the lowest rank's record (``rank=`` picks another). Give per-rank files
per-rank names.

Safety: loading a pickle (``load_pkl``, ``load`` of ``.pkl`` or pickled data) runs code from
the store — only load what you trust. Torch loads use ``weights_only=True`` unless the
caller passes ``weights_only=False``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import mimetypes
import os
import pickle
import re
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from . import media
from .cas import ContentStore, PutResult, Stage, stage
from .names import check_name
from .storage.base import Appender, StorageBackend
from .storage.abandoned import closing_abandoned
from .writers.rowstore import gather_async

if TYPE_CHECKING:
    from .run import Run

MANIFEST_DIR = "files"
TABLE_NAME = "files"
TABLE_CHUNK = 65536
#: the files table's columns and their kinds (str → zarr variable-length string)
TABLE_COLUMNS = (("path", "str"), ("name", "str"), ("namespace", "str"), ("sha256", "str"),
                 ("size", "int"), ("media_type", "str"), ("rank", "int"), ("host", "str"),
                 ("step", "int"), ("time", "float"), ("version", "int"), ("attempt", "int"))

_KINDS: dict[str, tuple[str, str]] = {  # extension -> (encoding kind, media type)
    ".pt": ("torch", "application/x-pytorch"), ".pth": ("torch", "application/x-pytorch"),
    ".ckpt": ("torch", "application/x-pytorch"),
    ".pkl": ("pickle", "application/x-pickle"), ".pickle": ("pickle", "application/x-pickle"),
    ".npy": ("npy", "application/x-npy"), ".npz": ("npz", "application/x-npz"),
    ".json": ("json", "application/json"), ".yaml": ("yaml", "application/yaml"),
    ".yml": ("yaml", "application/yaml"), ".txt": ("text", "text/plain"),
    ".md": ("text", "text/markdown"), ".log": ("text", "text/plain"), ".csv": ("text", "text/csv"),
    ".wav": ("wav", "audio/wav"), ".mp4": ("video", "video/mp4"), ".mov": ("video", "video/quicktime"),
    ".mkv": ("video", "video/x-matroska"), ".avi": ("video", "video/x-msvideo"),
    ".gif": ("image", "image/gif"),
    **{e: ("image", f"image/{f.lower()}") for e, f in media.IMAGE_FORMATS.items() if e != ".gif"},
}
_KIND_OF_MEDIA = {mt: kind for kind, mt in _KINDS.values()}
_KIND_OF_MEDIA.update({"application/octet-stream": "bytes", "text/plain": "text"})


def manifest_path(rank: int) -> str:
    return f"{MANIFEST_DIR}/manifest-rank-{rank:05d}.jsonl"


def _ext(name: str) -> str:
    return os.path.splitext(name.rsplit("/", 1)[-1])[1].lower()


def media_type_of(name: str, default: str = "application/octet-stream") -> str:
    ext = _ext(name)
    if ext in _KINDS:
        return _KINDS[ext][1]
    return mimetypes.guess_type(name.rsplit("/", 1)[-1])[0] or default


@dataclass(frozen=True)
class FileRecord:
    """One save of one file by one rank (a line of that rank's manifest)."""

    path: str
    name: str
    namespace: str
    sha256: str
    size: int
    media_type: str
    rank: int
    host: str
    step: int | None
    time: float
    version: int
    attempt: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FileRecord":
        return cls(**{k: d.get(k, 0 if k == "attempt" else None) for k in cls.__dataclass_fields__})


def parse_manifest(text: str | bytes) -> list[FileRecord]:
    """Records of one manifest text; a torn last line (a crash mid-write) is skipped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = []
    for line in text.splitlines():
        try:
            out.append(FileRecord.from_dict(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


def manifest_names(storage: StorageBackend) -> list[str]:
    return [n for n in storage.list_dir(MANIFEST_DIR)
            if n.startswith("manifest-rank-") and n.endswith(".jsonl")]


def read_manifests(storage: StorageBackend) -> list[FileRecord]:
    """Every rank's records in the run folder ``storage``, in (time, rank, path) order."""
    recs: list[FileRecord] = []
    for n in manifest_names(storage):
        with contextlib.suppress(FileNotFoundError):
            recs.extend(parse_manifest(storage.read_bytes(f"{MANIFEST_DIR}/{n}")))
    return sorted(recs, key=lambda r: (r.time, r.rank, r.path))


def write_files_table(storage: StorageBackend, records: list[FileRecord] | None = None) -> int:
    """Rank 0, at close: merge all manifests into ``files.zarr`` + ``files.commit.json``.

    One 1-D array per column of ``TABLE_COLUMNS`` (strings as zarr v3 variable-length
    strings, ``step`` as int64 with -1 for none), rows in (time, rank, path) order, chunks of
    65,536 rows. ``files.commit.json`` (``{"format": 1, "length": n, ...}``) is removed first
    and written last, so a reader that finds it finds every row it counts. Returns ``n``.
    ``records`` saves re-reading the manifests when the caller has them all.
    """
    if records is None:
        if not manifest_names(storage):
            return 0
        records = read_manifests(storage)
    if not records:
        return 0
    import zarr

    recs = sorted(records, key=lambda r: (r.time, r.rank, r.path))
    n = len(recs)
    commit = f"{TABLE_NAME}.commit.json"
    storage.delete(commit)
    store = storage.zarr_store(f"{TABLE_NAME}.zarr")
    with closing_abandoned():
        group = zarr.open_group(store=store, mode="w")._async_group
    columns = []
    for col, kind in TABLE_COLUMNS:
        values = [getattr(r, col) for r in recs]
        if kind == "str":
            columns.append((col, np.array(values, dtype=str), str))
        elif kind == "int":
            columns.append((col, np.array([-1 if v is None else v for v in values], np.int64), "int64"))
        else:
            columns.append((col, np.array(values, dtype=np.float64), "float64"))
    # every column at once through zarr's async API: a few round trips, not 2 per column
    arrays = gather_async([group.create_array(col, shape=(n,), chunks=(min(max(n, 1), TABLE_CHUNK),),
                                         dtype=dtype) for col, _, dtype in columns])
    if n:
        gather_async([a.setitem(slice(0, n), data) for a, (_, data, _) in zip(arrays, columns)])
    with warnings.catch_warnings(), closing_abandoned():
        warnings.simplefilter("ignore")  # "consolidated metadata is not in the v3 spec"
        zarr.consolidate_metadata(store)
    storage.write_json(commit, {"format": 1, "table": TABLE_NAME, "length": n,
                                "columns": [c for c, _ in TABLE_COLUMNS], "time": time.time()})
    return n


class _Index:
    """Every rank's records by path, read incrementally from the manifests (tailing)."""

    def __init__(self, storage: StorageBackend, rank: int, attempt: int, world_size: int) -> None:
        self.storage = storage
        self.me = (rank, attempt)
        self.by_path: dict[str, list[FileRecord]] = {}
        self._pos: dict[str, int] = {}  # byte offset (appendable stores) or segments read
        # alone in the run, only earlier attempts wrote other records: read them once
        self._alone = world_size == 1
        self._read_once = False

    def add(self, rec: FileRecord) -> None:
        self.by_path.setdefault(rec.path, []).append(rec)

    def refresh(self) -> None:
        """Read what other ranks (and earlier attempts) appended since the last call.

        One listing of ``files/`` plus one read per manifest (a segment listing and the new
        segments on object stores) per call; a single-process run reads once.
        """
        if self._alone and self._read_once:
            return
        self._read_once = True
        for n in manifest_names(self.storage):
            for rec in parse_manifest(self._tail(f"{MANIFEST_DIR}/{n}")):
                if (rec.rank, rec.attempt) != self.me:  # ours are added when written
                    self.add(rec)

    def _tail(self, path: str) -> bytes:
        pos = self._pos.get(path, 0)
        if self.storage.supports_append:
            try:
                with self.storage.open_read(path) as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                return b""
            data = data[: data.rfind(b"\n") + 1]  # whole lines only: a write may be in flight
            self._pos[path] = pos + len(data)
            return data
        parts = [data for _, data in self.storage.iter_segments(path, start=pos)]
        self._pos[path] = pos + len(parts)
        return b"".join(parts)

    def all(self) -> list[FileRecord]:
        return [r for recs in self.by_path.values() for r in recs]

    def next_version(self, path: str, sha256: str) -> int:
        recs = self.by_path.get(path)
        if not recs:
            return 1
        latest = max(r.version for r in recs)
        same = any(r.version == latest and r.sha256 == sha256 for r in recs)
        return latest if same else latest + 1

    def resolve(self, path: str, version: int | None, rank: int | None) -> FileRecord:
        recs = [r for r in self.by_path.get(path, []) if rank is None or r.rank == rank]
        if not recs:
            known = sorted(self.by_path)
            hint = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "") or "none"
            who = f" from rank {rank}" if rank is not None else ""
            raise FileNotFoundError(f"no file {path!r}{who} in this run; saved so far: {hint}")
        versions = sorted({r.version for r in recs})
        if version is None:
            v = versions[-1]
        elif version < 0 and -version <= len(versions):
            v = versions[version]
        elif version in versions:
            v = version
        else:
            raise FileNotFoundError(f"file {path!r} has no version {version}; versions: {versions}")
        return min((r for r in recs if r.version == v), key=lambda r: (r.rank, r.time))


class _Shared:
    """State of one run's artifact logger, shared by its namespaced views."""

    def __init__(self, run: "Run") -> None:
        self.run = run
        self.cas = ContentStore(run.root)
        self.index = _Index(run.storage, run.rank, getattr(run, "attempt", 0), run.world_size)
        self.lock = threading.RLock()
        self._appender: Appender | None = None
        run.before_final_flush(self.flush)
        run.on_close(self.close)

    def append(self, rec: FileRecord) -> None:
        # the blob is already stored: a record never points at bytes that are not there
        with self.lock:
            if self._appender is None:
                self._appender = self._open_appender()
            self._appender.write(rec.to_json() + "\n")
            self._appender.flush()  # durable now, and visible to other ranks' versioning
            self.index.add(rec)

    def _open_appender(self) -> Appender:
        storage, path = self.run.storage, manifest_path(self.run.rank)
        app = storage.open_appender(path)
        if storage.supports_append:
            # an earlier attempt that crashed mid-line must not swallow our first record
            with contextlib.suppress(FileNotFoundError), storage.open_read(path) as f:
                size = f.seek(0, 2)
                if size:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        app.write("\n")
        return app

    def flush(self) -> None:
        with self.lock:
            if self._appender is not None:
                self._appender.flush()

    def close(self) -> None:
        # after the final flush, which is a barrier: every rank's records are on the store
        try:
            if self.run.rank == 0:
                with self.lock:
                    self.index.refresh()
                    recs = self.index.all()
                write_files_table(self.run.storage, recs)
        finally:
            with self.lock:
                if self._appender is not None:
                    self._appender.close()
                    self._appender = None


class ArtifactLogger:
    """Save and load a run's files; ``files("checkpoints")`` is a namespaced view.

    Every ``save*`` returns the ``FileRecord`` written. Names may contain ``/``; the logical
    path is ``namespace/name``. See the module docstring for versions and safety.
    """

    def __init__(self, run: "Run", namespace: str = "", _shared: _Shared | None = None) -> None:
        self._run = run
        self._ns = namespace
        self._shared = _shared or _Shared(run)

    def __call__(self, namespace: str) -> "ArtifactLogger":
        check_name(namespace, "files namespace", allow_slash=True)
        ns = f"{self._ns}/{namespace}" if self._ns else namespace
        return ArtifactLogger(self._run, ns, self._shared)

    def __repr__(self) -> str:
        return f"<ArtifactLogger {self._run.url!r} namespace={self._ns!r}>"

    @property
    def namespace(self) -> str:
        return self._ns

    def _path(self, name: str) -> str:
        check_name(name, "file name", allow_slash=True)
        return f"{self._ns}/{name}" if self._ns else name

    # ---- saving ------------------------------------------------------------------------
    def save(self, data: Any, filename: str, *, step: int | None = None) -> FileRecord:
        """Save ``data`` as ``filename``, encoded by extension, else by type.

        ``.pt/.pth/.ckpt`` torch.save; ``.npy``/``.npz`` NumPy; ``.json``/``.yaml``/``.yml``
        dicts and lists; ``.pkl``/``.pickle`` pickle; ``.txt``/``.md``/``.csv``/``.log`` text.
        Other names: bytes as they are, str as UTF-8, NumPy arrays as ``.npy``, tensors and
        objects holding tensors with torch.save, anything else with pickle.
        """
        self._path(filename)
        kind = _KINDS.get(_ext(filename), (None, None))[0]
        is_raw = isinstance(data, (bytes, bytearray, memoryview))
        if kind == "image" and not is_raw:
            return self.save_image(filename, data, step=step)
        if kind == "video" and not is_raw:
            return self.save_video(filename, data, step=step)
        if kind == "wav" and not is_raw:
            raise TypeError(f"save({filename!r}): audio needs a sample rate; use "
                            "save_audio(name, samples, sample_rate)")
        if kind is None or is_raw:
            kind = _kind_of_value(data)
        media_type = media_type_of(filename, _default_media(kind))
        if kind == "bytes":
            return self._save_bytes(bytes(data), filename, media_type, step)
        if kind == "text":
            return self._save_bytes(str(data).encode("utf-8"), filename, media_type, step)
        if kind == "json":
            text = json.dumps(data, indent=1, sort_keys=True, allow_nan=True, default=_json_default)
            return self._save_bytes(text.encode("utf-8"), filename, media_type, step)
        if kind == "yaml":
            yaml = media.require("yaml", "saving YAML", extra="yaml")
            text = yaml.safe_dump(data, sort_keys=True)
            return self._save_bytes(text.encode("utf-8"), filename, media_type, step)
        with stage() as st:
            _STREAM_ENCODERS[kind](data, st.writer)
            return self._save_stage(st, filename, media_type, step)

    def save_pkl(self, data: Any, filename: str, *, step: int | None = None) -> FileRecord:
        """Pickle ``data`` (streamed to a temp file, then uploaded)."""
        self._path(filename)
        with stage() as st:
            pickle.dump(data, st.writer, protocol=pickle.HIGHEST_PROTOCOL)
            return self._save_stage(st, filename, media_type_of(filename, "application/x-pickle"), step)

    def save_torch(self, obj: Any, filename: str, *, step: int | None = None) -> FileRecord:
        """``torch.save`` into a local temp file while hashing, then upload it streamed.

        The checkpoint is never held twice in memory, and the bytes do not depend on the
        temp file's name (torch names the archive after a path, not after a file object).
        """
        self._path(filename)
        import torch

        with stage() as st:
            torch.save(obj, st.writer)
            return self._save_stage(st, filename, media_type_of(filename, "application/x-pytorch"), step)

    def log_file(self, name: str, local_path: str | os.PathLike[str], *,
                 step: int | None = None) -> FileRecord:
        """Store an existing local file as ``name`` (hashed, then uploaded streamed)."""
        self._path(name)
        local_path = os.fspath(local_path)
        if not os.path.isfile(local_path):
            raise FileNotFoundError(f"log_file({name!r}): {local_path!r} is not a file")
        res = self._shared.cas.put_file(local_path)
        media_type = media_type_of(name, media_type_of(local_path))
        return self._record(name, res, media_type, step, lambda: self._shared.cas.put_file(local_path))

    def save_image(self, name: str, image: Any, *, step: int | None = None,
                   columns: int | None = None) -> FileRecord:
        """An image (array, tensor, PIL image, matplotlib figure) or a list of them (a grid).

        ``name`` without an extension gets ``.png``. See ``distlog.media`` for shapes and
        dtypes; an unsupported one raises ``ValueError`` naming the shape.
        """
        name = name if _ext(name) else f"{name}.png"
        self._path(name)
        fmt = media.image_format(_ext(name))
        if media.is_figure(image):
            data = media.figure_bytes(image, fmt.lower() if fmt != "JPEG" else "jpg")
        elif type(image).__module__.startswith("PIL."):
            data = media.encode_pil(image, fmt)
        elif isinstance(image, (list, tuple)):
            data = media.encode_image(media.make_grid(image, columns, what=f"image {name!r}"), fmt)
        else:
            data = media.encode_image(media.to_hwc(image, f"image {name!r}"), fmt)
        return self._save_bytes(data, name, media_type_of(name), step)

    def save_video(self, name: str, frames: Any, fps: float = 20, *, step: int | None = None,
                   codec: str | None = "libx264", quality: float | None = 5) -> FileRecord:
        """Frames (``T×H×W×C`` or a list of images) as MP4 (default) or GIF by extension."""
        name = name if _ext(name) else f"{name}.mp4"
        self._path(name)
        ext = _ext(name)
        if ext not in media.VIDEO_EXTS:
            raise ValueError(f"video {name!r}: use one of {', '.join(media.VIDEO_EXTS)}")
        out, h, w = media.video_frames(frames, f"video {name!r}")
        return self._save_frames(name, out, (h, w), fps, codec, quality, step)

    def _save_frames(self, name: str, frames: Iterable[np.ndarray], size: tuple[int, int],
                     fps: float, codec: str | None, quality: float | None,
                     step: int | None) -> FileRecord:
        ext = _ext(name)
        if ext == ".gif":
            data = media.gif_bytes(list(frames), fps)
            return self._save_bytes(data, name, media_type_of(name), step)
        with stage(suffix=ext) as st:
            media.write_ffmpeg_video(st.path, frames, size, fps, codec, quality)
            return self._save_stage(st, name, media_type_of(name), step)

    def save_audio(self, name: str, samples: Any, sample_rate: int = media.DEFAULT_SAMPLE_RATE, *,
                   step: int | None = None) -> FileRecord:
        """PCM WAV; ``name`` without an extension gets ``.wav``. ``sample_rate`` in Hz defaults
        to 44,100 (``distlog.media.DEFAULT_SAMPLE_RATE``, TensorBoard's ``add_audio`` default):
        pass the real rate of the samples (16,000 for most speech models)."""
        name = name if _ext(name) else f"{name}.wav"
        self._path(name)
        if _ext(name) != ".wav":
            raise ValueError(f"audio {name!r}: only .wav is written")
        data = media.wav_bytes(samples, sample_rate, f"audio {name!r}")
        return self._save_bytes(data, name, "audio/wav", step)

    def savefig(self, fig: Any, filename: str, *, step: int | None = None, close: bool = True,
                **savefig_kw: Any) -> FileRecord:
        """A matplotlib figure in the format of ``filename``'s extension; closed afterwards."""
        self._path(filename)
        ext = _ext(filename)
        if not ext:
            raise ValueError(f"savefig: {filename!r} needs an extension naming the format (.png, .pdf, .svg ...)")
        data = media.figure_bytes(fig, ext[1:], close=close, **savefig_kw)
        return self._save_bytes(data, filename, media_type_of(filename), step)

    def make_video(self, pattern: str, output: str, fps: float = 20, codec: str | None = "libx264",
                   quality: float | None = 5, sort: Any = "natural", *,
                   step: int | None = None) -> FileRecord:
        """A video from images already saved here whose names match ``pattern`` (fnmatch).

        ``sort``: ``"natural"`` (``f2`` before ``f10``; default), ``"name"``, ``"time"`` (save
        order), ``"step"``, a key function of the ``FileRecord``, or ``False``/``None`` (save
        order). Frames are decoded one at a time and streamed to ffmpeg.
        """
        output = output if _ext(output) else f"{output}.mp4"
        self._path(output)
        if _ext(output) not in media.VIDEO_EXTS:
            raise ValueError(f"make_video output {output!r}: use one of {', '.join(media.VIDEO_EXTS)}")
        recs = self.list(pattern)
        recs = [r for r in recs if _KINDS.get(_ext(r.name), ("",))[0] == "image"]
        if not recs:
            raise FileNotFoundError(f"make_video: no saved images match {pattern!r} in namespace "
                                    f"{self._ns or '(root)'!r}")
        recs = _sort_records(recs, sort)
        first = self._decode_frame(recs[0])
        h, w = first.shape[:2]

        def frames() -> Iterable[np.ndarray]:
            yield first
            for r in recs[1:]:
                f = self._decode_frame(r)
                if f.shape[:2] != (h, w):
                    raise ValueError(f"make_video: frame {r.path!r} is {f.shape[1]}×{f.shape[0]}, "
                                     f"the first is {w}×{h}; frames must share one size")
                yield f

        return self._save_frames(output, frames(), (h, w), fps, codec, quality, step)

    def _decode_frame(self, rec: FileRecord) -> np.ndarray:
        with self._shared.cas.open(rec.sha256) as f:
            a = media.decode_image(f)
        return media._rgb(media.to_uint8(a))

    # ---- bookkeeping -------------------------------------------------------------------
    def _save_bytes(self, data: bytes, name: str, media_type: str, step: int | None) -> FileRecord:
        cas = self._shared.cas
        return self._record(name, cas.put_bytes(data), media_type, step, lambda: cas.put_bytes(data))

    def _save_stage(self, st: Stage, name: str, media_type: str, step: int | None) -> FileRecord:
        digest, size = st.finish()
        cas = self._shared.cas
        res = cas.put_file(st.path, digest, size)
        return self._record(name, res, media_type, step, lambda: cas.put_file(st.path, digest, size))

    def _record(self, name: str, res: PutResult, media_type: str, step: int | None,
                reput: Callable[[], PutResult]) -> FileRecord:
        run, sh = self._run, self._shared
        path = self._path(name)
        if step is None:
            step = run.current_step
        with sh.lock:
            sh.index.refresh()
            rec = FileRecord(
                path=path, name=name, namespace=self._ns, sha256=res.sha256, size=res.size,
                media_type=media_type, rank=run.rank, host=run.info.host,
                step=None if step is None else int(step), time=time.time(),
                version=sh.index.next_version(path, res.sha256),
                attempt=getattr(run, "attempt", 0),
            )
            sh.append(rec)
        if res.reused_old and not sh.cas.exists(res.sha256):
            reput()  # a garbage collector deleted the old blob while we recorded it
        return rec

    # ---- reading -----------------------------------------------------------------------
    def _resolve(self, name: str, version: int | None, rank: int | None) -> FileRecord:
        path = self._path(name)
        with self._shared.lock:
            self._shared.index.refresh()
            return self._shared.index.resolve(path, version, rank)

    def info(self, name: str, version: int | None = None, rank: int | None = None) -> FileRecord:
        """The record ``load`` would read (``version``: 1, 2, ... or -1 for the latest)."""
        return self._resolve(name, version, rank)

    def exists(self, name: str) -> bool:
        try:
            self._resolve(name, None, None)
            return True
        except FileNotFoundError:
            return False

    def open(self, name: str, version: int | None = None, rank: int | None = None) -> IO[bytes]:
        """A streaming, seekable binary file of a saved file (latest version by default)."""
        return self._shared.cas.open(self._resolve(name, version, rank).sha256)

    def read_bytes(self, name: str, version: int | None = None, rank: int | None = None) -> bytes:
        with self.open(name, version, rank) as f:
            return f.read()

    def load(self, filename: str, version: int | None = None, rank: int | None = None,
             **kw: Any) -> Any:
        """Decode a saved file by its extension (else by its recorded media type).

        Torch files load with ``weights_only=True`` (pass ``weights_only=False`` to opt out;
        ``map_location`` is passed on). Pickles run code from the store when loaded: load only
        files you trust. Images come back as arrays, ``.wav`` as ``(samples, rate)``,
        videos as ``T×H×W×3`` arrays, unknown types as bytes.
        """
        rec = self._resolve(filename, version, rank)
        kind = _KINDS.get(_ext(rec.name), (None,))[0] or _KIND_OF_MEDIA.get(rec.media_type, "bytes")
        if kind == "torch":
            return self._torch_load(rec, **kw)
        if kind == "video" or (kind == "image" and _ext(rec.name) == ".gif"):
            return self._load_video(rec)
        with self._shared.cas.open(rec.sha256) as f:
            return _DECODERS[kind](f)

    def load_pkl(self, filename: str, version: int | None = None, rank: int | None = None) -> Any:
        """Unpickle a saved file. This runs code from the store: load only what you trust."""
        with self._shared.cas.open(self._resolve(filename, version, rank).sha256) as f:
            return pickle.load(f)

    def load_torch(self, filename: str, version: int | None = None, rank: int | None = None, *,
                   map_location: Any = None, weights_only: bool = True, **kw: Any) -> Any:
        """``torch.load`` of a saved file, streamed; ``weights_only=True`` unless you opt out
        (``weights_only=False`` unpickles arbitrary objects, i.e. runs code from the store)."""
        rec = self._resolve(filename, version, rank)
        return self._torch_load(rec, map_location=map_location, weights_only=weights_only, **kw)

    def _torch_load(self, rec: FileRecord, map_location: Any = None, weights_only: bool = True,
                    **kw: Any) -> Any:
        import torch

        with self._shared.cas.open(rec.sha256) as f:
            return torch.load(f, map_location=map_location, weights_only=weights_only, **kw)

    def _load_video(self, rec: FileRecord) -> np.ndarray:
        if _ext(rec.name) == ".gif":
            with self._shared.cas.open(rec.sha256) as f:
                return media.decode_image(f)
        with stage(suffix=_ext(rec.name)) as st:
            with self._shared.cas.open(rec.sha256) as src, open(st.path, "wb") as dst:
                _copy(src, dst)
            return media.read_ffmpeg_video(st.path)

    def download(self, name: str, local_path: str | os.PathLike[str], version: int | None = None,
                 rank: int | None = None) -> FileRecord:
        """Copy a saved file to ``local_path`` (streamed)."""
        rec = self._resolve(name, version, rank)
        with self._shared.cas.open(rec.sha256) as src, open(local_path, "wb") as dst:
            _copy(src, dst)
        return rec

    def list(self, pattern: str | None = None) -> list[FileRecord]:
        """The latest version of every file under this namespace, by path.

        ``pattern`` (fnmatch) filters names relative to the namespace (``"frames/*.png"``).
        """
        with self._shared.lock:
            self._shared.index.refresh()
            paths = list(self._shared.index.by_path)
        prefix = f"{self._ns}/" if self._ns else ""
        out = []
        for p in sorted(paths):
            if not p.startswith(prefix):
                continue
            rel = p[len(prefix):]
            if pattern is None or fnmatch.fnmatchcase(rel, pattern):
                out.append(self._shared.index.resolve(p, None, None))
        return out

    def versions(self, name: str) -> list[FileRecord]:
        """One record per version of ``name`` (the lowest rank's), oldest first."""
        path = self._path(name)
        with self._shared.lock:
            self._shared.index.refresh()
            recs = self._shared.index.by_path.get(path, [])
            return [self._shared.index.resolve(path, v, None) for v in sorted({r.version for r in recs})]

    def records(self, name: str | None = None) -> list[FileRecord]:
        """Every rank's records (of ``name``, or of every file under this namespace)."""
        prefix = f"{self._ns}/" if self._ns else ""
        path = self._path(name) if name is not None else None
        with self._shared.lock:
            self._shared.index.refresh()
            recs = [r for p, rs in self._shared.index.by_path.items()
                    if (p == path if path else p.startswith(prefix)) for r in rs]
        return sorted(recs, key=lambda r: (r.time, r.rank, r.path))


# ---- encoders and decoders by kind -----------------------------------------------------------
def _is_torch_object(data: Any) -> bool:
    mod = type(data).__module__
    if mod.startswith("torch"):
        return True
    if isinstance(data, dict):
        return any(_is_torch_object(v) for v in list(data.values())[:64])
    if isinstance(data, (list, tuple)):
        return any(_is_torch_object(v) for v in data[:64])
    return False


def _kind_of_value(data: Any) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(data, str):
        return "text"
    if isinstance(data, np.ndarray):
        return "npy"
    if _is_torch_object(data):
        return "torch"
    return "pickle"


_DEFAULT_MEDIA = {"torch": "application/x-pytorch", "pickle": "application/x-pickle",
                  "npy": "application/x-npy", "npz": "application/x-npz",
                  "json": "application/json", "yaml": "application/yaml", "text": "text/plain"}


def _default_media(kind: str) -> str:
    return _DEFAULT_MEDIA.get(kind, "application/octet-stream")


def _save_npz(data: Any, f: IO[bytes]) -> None:
    if isinstance(data, dict):
        np.savez(f, **{str(k): np.asarray(v) for k, v in data.items()})
    else:
        np.savez(f, np.asarray(data))


def _torch_save(data: Any, f: IO[bytes]) -> None:
    import torch

    torch.save(data, f)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable; save it as .pkl or .pt")


_STREAM_ENCODERS: dict[str, Callable[[Any, IO[bytes]], None]] = {
    "torch": _torch_save,
    "pickle": lambda d, f: pickle.dump(d, f, protocol=pickle.HIGHEST_PROTOCOL),
    "npy": lambda d, f: np.save(f, np.asarray(d), allow_pickle=False),
    "npz": _save_npz,
}


def _load_npz(f: IO[bytes]) -> dict[str, np.ndarray]:
    with np.load(f, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _load_yaml(f: IO[bytes]) -> Any:
    return media.require("yaml", "loading YAML", extra="yaml").safe_load(f)


_DECODERS: dict[str, Callable[[IO[bytes]], Any]] = {
    "pickle": pickle.load,
    "npy": lambda f: np.load(f, allow_pickle=False),
    "npz": _load_npz,
    "json": json.load,
    "yaml": _load_yaml,
    "text": lambda f: f.read().decode("utf-8"),
    "image": media.decode_image,
    "wav": media.read_wav,
    "bytes": lambda f: f.read(),
}


def _copy(src: IO[bytes], dst: IO[bytes], chunk: int = 8 << 20) -> None:
    while block := src.read(chunk):
        dst.write(block)


_NUM = re.compile(r"(\d+)")


def _natural_key(r: FileRecord) -> list[Any]:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in _NUM.split(r.path) if t]


def _sort_records(recs: list[FileRecord], sort: Any) -> list[FileRecord]:
    if callable(sort):
        return sorted(recs, key=sort)
    if sort in (None, False, "time"):
        return sorted(recs, key=lambda r: (r.time, r.rank))
    if sort in (True, "natural"):
        return sorted(recs, key=_natural_key)
    if sort == "name":
        return sorted(recs, key=lambda r: r.path)
    if sort == "step":
        return sorted(recs, key=lambda r: (-1 if r.step is None else r.step, r.time))
    raise ValueError(f"make_video sort={sort!r}; use 'natural', 'name', 'time', 'step', "
                     "a key function, or None")
