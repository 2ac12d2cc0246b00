"""``ArtifactLogger``: save and load a run's files (``exp.files``); see ``distlog.files``."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import io
import json
import math
import os
import pickle
import time
from numbers import Real
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from .. import media
from ..inputs import exact_step
from ..cas import PutResult, Stage, copy_file, stage
from ..names import check_name
from .index import _Shared, check_version_rank, one_per_version
from .kinds import (_FIGURE_FORMATS, _KINDS, _STREAM_ENCODERS, _copy, _default_media, _ext,
                    _json_default, _kind_of_value, decode, kind_of, media_type_of, text_of)
from ..writers.manifest import FileRecord
from .ordering import _sort_records

if TYPE_CHECKING:
    from ..context import RunContext


#: formats whose files distlog does not write: an object saved under such a name would be a
#: pickle in disguise (its bytes, or a path to a file, are saved as they are)
_OTHER_FORMATS = {".parquet", ".pq", ".feather", ".arrow", ".ipc", ".orc", ".avro", ".h5", ".hdf5",
                  ".hdf", ".nc", ".onnx", ".safetensors", ".tflite", ".xlsx", ".xls", ".zip", ".tar",
                  ".tgz", ".msgpack", ".sqlite", ".db"}

class ArtifactLogger:
    """Save and load a run's files; ``files("checkpoints")`` is a namespaced view.

    Every ``save*`` returns the ``FileRecord`` written. Names may contain ``/``; the logical
    path is ``namespace/name``. See the module docstring for versions and safety.
    """

    def __init__(self, ctx: "RunContext", namespace: str = "", _shared: _Shared | None = None) -> None:
        self._ctx = ctx
        self._ns = namespace
        self._shared = _shared or _Shared(ctx)

    def __call__(self, namespace: str) -> "ArtifactLogger":
        check_name(namespace, "files namespace", allow_slash=True)
        ns = f"{self._ns}/{namespace}" if self._ns else namespace
        if self._ns:  # the byte limit is the whole path's (nested namespaces included)
            check_name(ns, "files namespace", allow_slash=True)
        return ArtifactLogger(self._ctx, ns, self._shared)

    def __repr__(self) -> str:
        return f"<ArtifactLogger {self._ctx.url!r} namespace={self._ns!r}>"

    @property
    def namespace(self) -> str:
        return self._ns

    def _path(self, name: str) -> str:
        check_name(name, "file name", allow_slash=True)
        if not self._ns:
            return name
        path = f"{self._ns}/{name}"
        check_name(path, "file name", allow_slash=True)  # (the limit is the namespace's and name's)
        return path

    # ---- saving ------------------------------------------------------------------------
    def save(self, data: Any, filename: str, *, step: int | None = None) -> FileRecord:
        """Save ``data`` as ``filename``, encoded by extension, else by type.

        ``.pt/.pth/.ckpt`` torch.save; ``.npy``/``.npz`` NumPy; ``.json``/``.yaml``/``.yml``
        dicts and lists; ``.pkl``/``.pickle`` pickle; ``.txt``/``.md``/``.csv``/``.log`` text
        (a DataFrame or an array as its data, all of it: ``files.kinds.text_of``).
        Image extensions render images (and matplotlib figures); ``.pdf``/``.svg``/``.eps``/
        ``.ps`` render figures. Other names: bytes as they are, str as UTF-8, NumPy arrays as
        ``.npy``, tensors and objects holding tensors with torch.save, anything else with
        pickle — recorded with that format's media type, so ``load`` decodes it whatever the
        name (a state dict saved as ``pytorch_model.bin`` loads as one). An ``io.BytesIO`` is
        its bytes; a path is refused (``log_file`` stores the file it names), and so are raw
        bytes under ``.npy``/``.npz`` that are no such file.
        """
        self._path(filename)
        data = _as_savable(data, filename)
        kind = _KINDS.get(_ext(filename), (None, None))[0]
        is_raw = isinstance(data, (bytes, bytearray, memoryview))
        magic = _MAGIC.get(_ext(filename))
        if is_raw and magic and not bytes(data[: len(magic[0])]) == magic[0]:
            raise TypeError(f"save(bytes, {filename!r}): these bytes are not {magic[1]} (they begin "
                            f"{bytes(data[:12])!r}, not {magic[0]!r}): save the {magic[2]} itself "
                            f"(files.save(value, {filename!r})), or name the bytes for what they are (.bin)")
        if kind == "image" and getattr(data, "ndim", 0) == 4 and _ext(filename) == ".gif":
            kind = "video"  # T×H×W×C: a GIF video, as load() returns one
        if kind == "image" and not is_raw:
            return self.save_image(filename, data, step=step)
        if kind == "video" and not is_raw:
            return self.save_video(filename, data, step=step)
        if kind == "wav" and not is_raw:
            raise TypeError(f"save({filename!r}): audio needs a sample rate; use "
                            "save_audio(name, samples, sample_rate)")
        if kind is None and _ext(filename) in _FIGURE_FORMATS and media.is_figure(data):
            return self.savefig(data, filename, step=step)  # (it was pickled, recorded as a PDF)
        if kind is None or is_raw:
            kind = _kind_of_value(data)
        if kind in ("pickle", "torch", "npy", "npz") and _ext(filename) in _OTHER_FORMATS:
            # (a pickle named t.parquet: downloaded, no parquet reader opens it)
            raise TypeError(
                f"save({type(data).__name__}, {filename!r}): distlog does not write {_ext(filename)} files, "
                f"and would store {'a pickle' if kind == 'pickle' else kind + ' bytes'} under that name; write the file yourself (e.g. "
                f"df.to_parquet(path)) and store it with log_file(name, path), or save its bytes; name it .pkl to store a pickle")
        # what the bytes are: an encoder's format whatever the name says (a state dict saved
        # as pytorch_model.bin was recorded application/octet-stream and loaded as bytes)
        media_type = (_default_media(kind) if kind in _STREAM_ENCODERS
                      else media_type_of(filename, _default_media(kind)))
        if kind == "bytes":
            return self._save_bytes(bytes(data), filename, media_type, step)
        if kind == "text":
            text = text_of(data, _ext(filename))
            try:
                raw = text.encode("utf-8")
            except UnicodeEncodeError as e:  # (a lone surrogate: text decoded with surrogateescape)
                raise ValueError(f"save({filename!r}): the text is not valid UTF-8 ({e.reason}: "
                                 f"{text[e.start:e.end]!r} at position {e.start}); nothing was stored; "
                                 "save bytes, or fix the text") from None
            return self._save_bytes(raw, filename, media_type, step)
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
        if os.path.isdir(local_path):  # (said only "is not a file": a checkpoint folder is common)
            raise IsADirectoryError(
                f"log_file({name!r}, {local_path!r}): expected one file, got a folder; store each "
                f"file under its own name, e.g. for p in pathlib.Path({local_path!r}).rglob('*'): "
                f"if p.is_file(): files.log_file(f'{name}/{{p.relative_to({local_path!r})}}', p)")
        if not os.path.isfile(local_path):
            raise FileNotFoundError(f"log_file({name!r}, {local_path!r}): expected a local file to "
                                    "store, but there is none at that path; pass an existing file")
        media_type = media_type_of(name, media_type_of(local_path))
        with stage() as st:  # kept until the record is safe: a reput stores these bytes again
            copy_file(local_path, st)
            return self._save_stage(st, name, media_type, step)

    def save_image(self, name: str, image: Any, *, step: int | None = None,
                   columns: int | None = None) -> FileRecord:
        """An image (array, tensor, PIL image, matplotlib figure) or a list of them (a grid).

        ``name`` without an extension gets ``.png``. See ``distlog.media`` for shapes and
        dtypes; an unsupported one raises ``ValueError`` naming the shape.
        """
        _name_first("save_image", name, image, "image")
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
        _name_first("save_video", name, frames, "frames")
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
        if isinstance(fps, bool) or not isinstance(fps, Real) or not math.isfinite(fps) or fps <= 0:
            # (0 raised ZeroDivisionError; a negative rate was stored as a GIF's shortest delay)
            raise ValueError(f"video {name!r}: fps must be a positive number of frames per second, "
                             f"got {fps!r}; e.g. fps=20")
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
        _name_first("save_audio", name, samples, "samples")
        name = name if _ext(name) else f"{name}.wav"
        self._path(name)
        if _ext(name) != ".wav":
            raise ValueError(f"audio {name!r}: only .wav is written")
        data = media.wav_bytes(samples, sample_rate, f"audio {name!r}")
        return self._save_bytes(data, name, "audio/wav", step)

    def savefig(self, fig: Any, filename: str | None = None, *, step: int | None = None,
                close: bool = True, **savefig_kw: Any) -> FileRecord:
        """A matplotlib figure in the format of ``filename``'s extension; closed afterwards."""
        _check_figure(fig, filename)
        self._path(filename)
        ext = _ext(filename)
        if not ext:
            raise ValueError(f"savefig: {filename!r} needs an extension naming the format (.png, .pdf, .svg ...)")
        data = media.figure_bytes(fig, ext[1:], close=close, **savefig_kw)
        return self._save_bytes(data, filename, media_type_of(filename), step)

    def make_video(self, pattern: str, output: str, fps: float = 20, codec: str | None = "libx264",
                   quality: float | None = 5, sort: Any = "natural", *,
                   step: int | None = None) -> FileRecord:
        """A video from images already saved here whose names match ``pattern`` (fnmatch); an
        animation (a GIF video) adds all its frames.

        ``sort``: ``"natural"`` (``f2`` before ``f10``; default), ``"name"``, ``"time"`` (save
        order), ``"step"``, a key function of the ``FileRecord``, or ``False``/``None`` (save
        order). Frames are decoded one at a time and streamed to ffmpeg.
        """
        output = output if _ext(output) else f"{output}.mp4"
        self._path(output)
        if _ext(output) not in media.VIDEO_EXTS:
            raise ValueError(f"make_video output {output!r}: use one of {', '.join(media.VIDEO_EXTS)}")
        _check_pattern("make_video", pattern)
        recs = self.list(pattern)
        recs = [r for r in recs if _KINDS.get(_ext(r.name), ("",))[0] == "image"]
        if not recs:
            raise FileNotFoundError(f"make_video: no saved images match {pattern!r} in namespace "
                                    f"{self._ns or '(root)'!r}")
        recs = _sort_records(recs, sort)
        first = self._decode_frames(recs[0])
        h, w = first[0].shape[:2]

        def frames() -> Iterable[np.ndarray]:
            yield from first
            for r in recs[1:]:
                for f in self._decode_frames(r):
                    if f.shape[:2] != (h, w):
                        raise ValueError(f"make_video: frame {r.path!r} is {f.shape[1]}×{f.shape[0]}, "
                                         f"the first is {w}×{h}; frames must share one size")
                    yield f

        return self._save_frames(output, frames(), (h, w), fps, codec, quality, step)

    def _decode_frames(self, rec: FileRecord) -> list[np.ndarray]:
        """A saved image as RGB frames: one, or every frame of an animation (a GIF video)."""
        with self._shared.cas.open_record(rec) as f:
            a = media.decode_image(f)
        return [media._rgb(media.to_uint8(x)) for x in (a if a.ndim == 4 else [a])]

    # ---- bookkeeping -------------------------------------------------------------------
    def _save_bytes(self, data: bytes, name: str, media_type: str, step: int | None) -> FileRecord:
        cas = self._shared.cas
        with _saving(name, len(data)):
            return self._record(name, cas.put_bytes(data), media_type, step, lambda: cas.put_bytes(data))

    def _save_stage(self, st: Stage, name: str, media_type: str, step: int | None) -> FileRecord:
        digest, size = st.finish()
        cas = self._shared.cas
        with _saving(name, size):
            res = cas.put_file(st.path, digest, size)
            return self._record(name, res, media_type, step, lambda: cas.put_file(st.path, digest, size))

    def _record(self, name: str, res: PutResult, media_type: str, step: int | None,
                reput: Callable[[], PutResult]) -> FileRecord:
        ctx, sh = self._ctx, self._shared
        path = self._path(name)
        if step is None:
            step = ctx.current_step
        with sh.lock:
            sh.index.refresh()
            rec = FileRecord(
                path=path, name=name, namespace=self._ns, sha256=res.sha256, size=res.size,
                media_type=media_type, rank=ctx.rank, host=ctx.info.host,
                step=_record_step(step), time=time.time(),
                version=sh.index.claim_version(path, res.sha256),
                attempt=ctx.attempt,
            )
            sh.append(rec)
        sh.cas.keep(res.sha256, reput)  # a garbage collector may be deleting the blob
        return rec

    # ---- reading -----------------------------------------------------------------------
    def _resolve(self, name: str, version: int | None, rank: int | None,
                 call: str = "files.load") -> FileRecord:
        version, rank = check_version_rank(call, name, version, rank)
        path = self._path(name)
        with self._shared.lock:
            self._shared.index.refresh()
            return self._shared.index.resolve(path, version, rank)

    def info(self, name: str, version: int | None = None, rank: int | None = None) -> FileRecord:
        """The record ``load`` would read (``version``: 1, 2, ... or -1 for the latest)."""
        return self._resolve(name, version, rank, "files.info")

    def exists(self, name: str) -> bool:
        try:
            self._resolve(name, None, None)
            return True
        except FileNotFoundError:
            return False

    def open(self, name: str, version: int | None = None, rank: int | None = None) -> IO[bytes]:
        """A streaming, seekable binary file of a saved file (latest version by default)."""
        return self._shared.cas.open_record(self._resolve(name, version, rank, "files.open"))

    def read_bytes(self, name: str, version: int | None = None, rank: int | None = None) -> bytes:
        with self._shared.cas.open_record(self._resolve(name, version, rank, "files.read_bytes")) as f:
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
        return decode(kind_of(rec.name, rec.media_type), rec.name, lambda: self._shared.cas.open_record(rec), **kw)

    def load_pkl(self, filename: str, version: int | None = None, rank: int | None = None) -> Any:
        """Unpickle a saved file. This runs code from the store: load only what you trust."""
        with self._shared.cas.open_record(self._resolve(filename, version, rank, "files.load_pkl")) as f:
            return pickle.load(f)

    def load_torch(self, filename: str, version: int | None = None, rank: int | None = None, *,
                   map_location: Any = None, weights_only: bool = True, **kw: Any) -> Any:
        """``torch.load`` of a saved file, streamed; ``weights_only=True`` unless you opt out
        (``weights_only=False`` unpickles arbitrary objects, i.e. runs code from the store)."""
        rec = self._resolve(filename, version, rank, "files.load_torch")
        return self._torch_load(rec, map_location=map_location, weights_only=weights_only, **kw)

    def _torch_load(self, rec: FileRecord, **kw: Any) -> Any:
        return decode("torch", rec.name, lambda: self._shared.cas.open_record(rec), **kw)

    def download(self, name: str, local_path: str | os.PathLike[str], version: int | None = None,
                 rank: int | None = None) -> FileRecord:
        """Copy a saved file to ``local_path`` (streamed)."""
        rec = self._resolve(name, version, rank, "files.download")
        with self._shared.cas.open_record(rec) as src, open(local_path, "wb") as dst:
            _copy(src, dst)
        return rec

    def list(self, pattern: str | None = None) -> list[FileRecord]:
        """The latest version of every file under this namespace, by path.

        ``pattern`` (fnmatch) filters names relative to the namespace (``"frames/*.png"``).
        """
        _check_pattern("list", pattern)
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
            return one_per_version(self._shared.index.by_path.get(path, []))

    def records(self, name: str | None = None) -> list[FileRecord]:
        """Every rank's records (of ``name``, or of every file under this namespace)."""
        prefix = f"{self._ns}/" if self._ns else ""
        path = self._path(name) if name is not None else None
        with self._shared.lock:
            self._shared.index.refresh()
            recs = [r for p, rs in self._shared.index.by_path.items()
                    if (p == path if path else p.startswith(prefix)) for r in rs]
        return sorted(recs, key=lambda r: (r.time, r.rank, r.path))


def _check_pattern(method: str, pattern: Any) -> None:
    if pattern is not None and not isinstance(pattern, str):  # (fnmatch: "object of type 'int' has no len()")
        raise TypeError(f"files.{method}({pattern!r:.40}): the pattern must be a str (fnmatch), got "
                        f"{type(pattern).__name__}; e.g. files.{method}('*.png')")


def _check_figure(fig: Any, filename: Any) -> None:
    """A ``TypeError`` naming the call unless ``fig`` is a matplotlib figure and a file name
    came (a non-figure raised "'int' object has no attribute 'savefig'")."""
    shown = f"files.savefig({fig!r:.40}{'' if filename is None else f', {filename!r:.60}'})"
    if media.is_figure(fig):
        if filename is None:
            raise TypeError(f"files.savefig(fig): a file name is missing; its extension names the "
                            "format, e.g. files.savefig(fig, 'plot.png')")
        return
    if isinstance(fig, str) and media.is_figure(filename):
        raise TypeError(f"files.savefig({fig!r}, <figure>): the figure comes first: "
                        f"files.savefig(fig, {fig!r})")
    array = hasattr(fig, "shape") or hasattr(fig, "__array__")
    name = filename if isinstance(filename, str) else "plot.png"
    hint = f" (an image array: files.save_image({name!r}, array))" if array else ""
    raise TypeError(f"{shown}: expected a matplotlib figure (plt.figure(), plt.gcf(), fig of "
                    f"plt.subplots()), got {type(fig).__name__}; e.g. files.savefig(fig, "
                    f"'plot.png'){hint}")


def _record_step(step: Any) -> int | float | None:
    """A save's step as its record keeps it: an integer as an int (exact however large), a
    fractional step (metrics and log lines take ``step=2.5``) as its float, not cut to 2."""
    if step is None:
        return None
    try:
        return exact_step(step)
    except ValueError:
        raise ValueError(f"a file's step must be a finite number, got {step!r}") from None


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextlib.contextmanager
def _saving(name: str, size: int) -> Any:
    """A store that is full (or over quota) says which save it refused, and what to do: the
    bare ``OSError: [Errno 28] No space left on device`` named no file."""
    try:
        yield
    except OSError as e:
        if e.errno not in _FULL:
            raise
        where = f" ({e.filename})" if e.filename else ""
        raise OSError(e.errno, f"save({name!r}, {size:,} bytes): {e.strerror}{where}. Nothing of this file "
                      "was recorded; what the run saved and logged before is kept. Free space on the "
                      "store (or raise its quota) and save it again") from e


#: the first bytes of a file format that raw bytes saved under its extension must have
_MAGIC = {".npy": (b"\x93NUMPY", "a NumPy .npy file", "array"),
          ".npz": (b"PK", "a NumPy .npz archive", "arrays (a dict of them)")}


def _as_savable(data: Any, filename: str) -> Any:
    """An in-memory binary buffer as its bytes (``io.BytesIO``: it was pickled); a path is
    refused, naming ``log_file`` (its text was stored, not the file it names)."""
    if isinstance(data, io.BytesIO):
        return data.getvalue()
    if isinstance(data, os.PathLike):
        raise TypeError(f"save({type(data).__name__}({os.fspath(data)!r}), {filename!r}): a path; to store "
                        f"the file it names use files.log_file({filename!r}, path); to store the path "
                        "as text save str(path)")
    return data


def _name_first(method: str, name: Any, data: Any, what: str) -> None:
    """The media savers take the name first (as TensorBoard's ``add_image(tag, img)``), unlike
    ``save(data, filename)``: arguments given the other way round are said so, not left to
    fail deep inside (an AttributeError on the array)."""
    if not isinstance(name, str) and isinstance(data, str):
        raise TypeError(f"{method}(name, {what}): got the {what} ({type(name).__name__}) first and the name "
                        f"({data!r}) second; the name comes first: {method}({data!r}, {what}) "
                        f"(unlike save(data, filename))")
