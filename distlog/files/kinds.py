"""How a saved value becomes bytes and back, by kind: the extension table (kind, media type),
the stream encoders and the decoders."""

from __future__ import annotations

import json
import mimetypes
import os
import pickle
from typing import IO, Any, Callable

import numpy as np

from .. import media


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
#: extensions of the vector formats a matplotlib figure is rendered in by ``save()`` (the
#: raster ones are images: ``_KINDS``)
_FIGURE_FORMATS = {".pdf", ".svg", ".svgz", ".eps", ".ps", ".pgf"}
_KIND_OF_MEDIA = {mt: kind for kind, mt in _KINDS.values()}
_KIND_OF_MEDIA.update({"application/octet-stream": "bytes", "text/plain": "text"})


def _ext(name: str) -> str:
    return os.path.splitext(name.rsplit("/", 1)[-1])[1].lower()


#: mimetypes' encodings (``table.csv.gz``: text/csv, gzip) -> the media type of the file itself
_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz",
               "compress": "application/x-compress", "br": "application/x-brotli"}


def media_type_of(name: str, default: str = "application/octet-stream") -> str:
    """The media type recorded for ``name``. A compressed file is its compression's type, not
    its content's (``table.csv.gz`` is application/gzip): it loads as bytes, not as CSV text."""
    ext = _ext(name)
    if ext in _KINDS:
        return _KINDS[ext][1]
    inner, encoding = mimetypes.guess_type(name.rsplit("/", 1)[-1])
    if encoding:
        return _COMPRESSED.get(encoding, "application/octet-stream")
    return inner or default



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


def text_of(data: Any, ext: str) -> str:
    """The text a ``.txt``/``.md``/``.csv``/``.log`` file holds for ``data``: a str as it is;
    tables and arrays as their data — never their console rendering, which elides rows
    (``...``): a pandas DataFrame or Series as CSV (``.csv``) or its full ``to_string()``; a
    1-D or 2-D NumPy array or tensor one row per line, comma-separated in ``.csv``, with
    every digit a float64 needs to read back the same; in ``.csv``, Python rows and columns
    as CSV (``_csv_of``); anything else as ``str(data)``."""
    if isinstance(data, str):
        return data
    mod = type(data).__module__
    if mod.startswith("pandas") and hasattr(data, "to_csv"):
        import pandas as pd

        ix = data.index
        plain = isinstance(ix, pd.RangeIndex) and ix.start == 0 and ix.step == 1 and ix.name is None
        if ext == ".csv":  # a default, unnamed 0..n-1 index is no data: left out, as read_csv expects
            return data.to_csv(index=not plain)
        return data.to_string(index=not plain)
    if mod.startswith("torch") and hasattr(data, "numpy"):
        data = data.detach().cpu().numpy()
    if isinstance(data, np.ndarray):
        if data.ndim > 2:
            raise TypeError(f"a text file holds a 1-D or 2-D array, got shape {data.shape}; save it "
                            "as .npy (np.load reads it back) or reshape it to 2-D first")
        kind = data.dtype.kind
        fmt = "%d" if kind in "biu" else "%.17g" if kind == "f" else "%s"
        import io

        out = io.StringIO()
        np.savetxt(out, np.atleast_1d(data), fmt=fmt, delimiter="," if ext == ".csv" else " ")
        return out.getvalue()
    if ext == ".csv":
        return _csv_of(data)
    return str(data)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool, np.generic))


def _csv_of(data: Any) -> str:
    """CSV text of a table given as Python data: a list of row dicts (columns in the order
    their keys first come), a dict of equal-length columns, a list of row lists, a list of
    values (one column) or a dict of values (one row); anything else is refused (its
    ``repr`` under a ``.csv`` name was no CSV)."""
    import csv
    import io

    out = io.StringIO()
    rows = list(data) if isinstance(data, (list, tuple)) else None
    if rows is not None and rows and all(isinstance(r, dict) for r in rows):
        writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    if rows is not None and all(isinstance(r, (list, tuple)) for r in rows):
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()
    if rows is not None and all(_scalar(r) for r in rows):  # one column
        csv.writer(out, lineterminator="\n").writerows([r] for r in rows)
        return out.getvalue()
    if isinstance(data, dict) and data and all(_scalar(v) for v in data.values()):  # one row
        writer = csv.DictWriter(out, fieldnames=list(data), lineterminator="\n")
        writer.writeheader()
        writer.writerow(data)
        return out.getvalue()
    if isinstance(data, dict) and data and all(isinstance(c, (list, tuple, np.ndarray)) for c in data.values()):
        lengths = {len(c) for c in data.values()}
        if len(lengths) == 1:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(list(data))
            writer.writerows(zip(*data.values()))
            return out.getvalue()
    raise TypeError(f"a .csv file holds a table, got {type(data).__name__} ({data!r:.60}); give a list of row "
                    "dicts, a dict of equal-length columns, a list of rows, a DataFrame, a 1-D or 2-D array "
                    "or the CSV text; or save it under another name (.json keeps dicts and lists as they are)")


_DEFAULT_MEDIA = {"torch": "application/x-pytorch", "pickle": "application/x-pickle",
                  "npy": "application/x-npy", "npz": "application/x-npz",
                  "json": "application/json", "yaml": "application/yaml", "text": "text/plain"}


def _default_media(kind: str) -> str:
    return _DEFAULT_MEDIA.get(kind, "application/octet-stream")


def _save_npz(data: Any, f: IO[bytes]) -> None:
    values = data if isinstance(data, dict) else {"arr_0": data}  # np.savez's name for one array
    arrays = {str(k): np.asarray(v) for k, v in values.items()}
    for (k, a), v in zip(arrays.items(), values.values()):
        if a.dtype.hasobject:  # np.savez would pickle it, and load (no pickles) would refuse
            raise TypeError(f".npz holds arrays of numbers, bools or strings; {k!r} is a "
                            f"{type(v).__name__}, an object array that loads only by unpickling. "
                            "Save it as .pkl or .pt, or make it a plain array")
    np.savez(f, **arrays)


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


def _compressed(name: str) -> bool:
    """Whether ``name`` is a compressed file by its extension (``table.csv.gz``)."""
    return _ext(name) not in _KINDS and mimetypes.guess_type(name.rsplit("/", 1)[-1])[1] is not None


def kind_of(name: str, media_type: str) -> str:
    """How a stored file decodes: by its name's extension, else by its recorded media type
    (``save(np.arange(3), "arr")`` records ``application/x-npy``). A compressed file
    (``table.csv.gz``) is its bytes whatever its record says: distlog before ad072c2 recorded
    such a file with its content's media type (text/csv), which would decode gzip as text."""
    if _compressed(name):
        return "bytes"
    return _KINDS.get(_ext(name), (None,))[0] or _KIND_OF_MEDIA.get(media_type, "bytes")


def decode(kind: str, name: str, open_blob: Callable[[], IO[bytes]], **kw: Any) -> Any:
    """A stored file decoded as ``kind`` (``kind_of``), its bytes read from ``open_blob()``:
    torch with ``weights_only=True`` unless ``kw`` says otherwise (``map_location`` too),
    videos and GIFs as ``T×H×W×3`` arrays, images as arrays, ``.wav`` as ``(samples, rate)``,
    pickles unpickled (callers that must not run code from the store check the kind first)."""
    if kind == "torch":
        import torch

        kw.setdefault("weights_only", True)
        with open_blob() as f:
            head = f.read(4)
            # torch.save writes a zip (legacy files: a pickle, protocol 2 on); other bytes
            # failed deep in torch (IndexError, or "weights only load failed ... weights_only=
            # False will likely succeed", which points at the unsafe option for no reason)
            if not head.startswith(b"PK") and head[:1] != b"\x80":
                raise ValueError(f"{name!r} is not a torch file (torch.save writes a zip archive; "
                                 f"its bytes begin {head!r}); load it as what it is: files.load() "
                                 "decodes by extension, files.read_bytes() gives the bytes")
            f.seek(0)
            return torch.load(f, **kw)
    if _ext(name) == ".gif":
        with open_blob() as f:
            return media.decode_image(f)
    if kind == "video":
        from ..cas import stage

        with stage(suffix=_ext(name)) as st:
            with open_blob() as src, open(st.path, "wb") as dst:
                _copy(src, dst)
            return media.read_ffmpeg_video(st.path)
    with open_blob() as f:
        return _DECODERS[kind](f)


def _copy(src: IO[bytes], dst: IO[bytes], chunk: int = 8 << 20) -> None:
    while block := src.read(chunk):
        dst.write(block)
