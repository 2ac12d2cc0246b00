"""Images, videos, audio and figures to and from bytes, with well-kept libraries.

Pillow encodes images and GIFs, imageio-ffmpeg (the imageio project's ffmpeg binary and pipe)
encodes and decodes MP4, the standard library's ``wave`` writes PCM WAV, matplotlib renders
figures. They are the ``distlog[media]`` extra, imported on first use; a missing one raises
``ImportError`` with the install command.

Layout rules (``ValueError`` naming the shape otherwise):

* images: ``H×W``, ``H×W×C`` or ``C×H×W`` with ``C`` in 1, 3, 4. A torch tensor whose first
  dimension is 1, 3 or 4 is read as ``C×H×W`` (torchvision's convention); other arrays are
  ``H×W×C`` when the last dimension is 1, 3 or 4, else ``C×H×W`` when the first one is.
* videos: ``T×H×W×C`` or ``T×H×W`` (torch: ``T×C×H×W`` as well), or a list of images.
* audio: 1-D (mono) or 2-D ``N×channels`` (torch: ``channels×N``).

Values: ``uint8``; ``uint16`` (kept as 16-bit for grey PNG/TIFF, scaled to 8 bits elsewhere,
since Pillow has no 16-bit colour mode); ``bool``; floats in ``[0, 1]`` (clipped; NaN or inf
is an error). Audio floats are in ``[-1, 1]`` and become 16-bit PCM; integer PCM is kept.
"""

from __future__ import annotations

import importlib
import io
import math
import operator
import re
import sys
import warnings
import wave
from typing import IO, Any, Iterable, Iterator, Sequence

import numpy as np


#: image extension -> Pillow format name
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                 ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}
#: video extensions written through ffmpeg (GIF goes through Pillow)
FFMPEG_VIDEO = (".mp4", ".mov", ".mkv", ".avi")
VIDEO_EXTS = (*FFMPEG_VIDEO, ".gif")
_SIXTEEN_BIT = ("PNG", "TIFF")
_NO_ALPHA = ("JPEG",)


def require(module: str, what: str, extra: str = "media") -> Any:
    """Import ``module`` or raise ImportError with the ``distlog[<extra>]`` install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{what} needs the package providing {module!r}, which is not installed; "
            f"install it with: pip install 'distlog[{extra}]'"
        ) from e


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def as_numpy(x: Any) -> np.ndarray:
    """A numpy view of a numpy array, torch tensor (any device/dtype) or nested list."""
    if _is_torch(x):
        t = x.detach().cpu()
        if t.dtype.is_floating_point and t.dtype not in (_torch().float32, _torch().float64):
            t = t.float()  # bfloat16 / float16: no numpy equivalent for bfloat16
        return t.numpy()
    return np.asarray(x)


def _torch() -> Any:
    import torch

    return torch


# ---- images ------------------------------------------------------------------------------
def _shape_error(what: str, shape: tuple[int, ...], expected: str) -> ValueError:
    return ValueError(f"{what} has shape {tuple(shape)}; expected {expected}")


def to_hwc(image: Any, what: str = "image") -> np.ndarray:
    """An image as ``H×W`` or ``H×W×C`` (C in 3, 4) with dtype uint8 or uint16."""
    torch_like = _is_torch(image)
    a = as_numpy(image)
    expected = "H×W, H×W×C or C×H×W with C in 1, 3, 4 (a list of images makes a grid)"
    if a.ndim == 3:
        if torch_like and a.shape[0] in (1, 3, 4):
            a = np.moveaxis(a, 0, -1)
        elif a.shape[-1] in (1, 3, 4):
            pass
        elif a.shape[0] in (1, 3, 4):
            a = np.moveaxis(a, 0, -1)
        else:
            raise _shape_error(what, a.shape, expected)
        if a.shape[-1] == 1:
            a = a[..., 0]
    elif a.ndim != 2:
        raise _shape_error(what, a.shape, expected)
    if 0 in a.shape:
        raise _shape_error(what, a.shape, "a non-empty image")
    return to_pixels(a, what)


def to_pixels(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} of shape {a.shape} has NaN or inf values; "
                             "floats must lie in [0, 1]")
        return np.ascontiguousarray(np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8))
    raise ValueError(f"{what} of shape {a.shape} has dtype {a.dtype}; use uint8, uint16, bool "
                     "or floats in [0, 1]")


def to_uint8(a: np.ndarray) -> np.ndarray:
    return (a >> 8).astype(np.uint8) if a.dtype == np.uint16 else a


def make_grid(images: Sequence[Any], columns: int | None = None, padding: int = 2,
              what: str = "image") -> np.ndarray:
    """Tile same-sized images into one uint8 image, row by row (``ceil(sqrt(n))`` columns)."""
    if len(images) == 0:
        raise ValueError(f"{what} is an empty list; give at least one image")
    tiles = [to_uint8(to_hwc(im, f"{what}[{i}]")) for i, im in enumerate(images)]
    shapes = {t.shape[:2] for t in tiles}
    if len(shapes) > 1:
        raise ValueError(f"{what}: grid images differ in size {sorted(shapes)}; resize them to one size")
    channels = max(1 if t.ndim == 2 else t.shape[2] for t in tiles)
    tiles = [_with_channels(t, channels) for t in tiles]
    n = len(tiles)
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w = tiles[0].shape[:2]
    shape = (rows * h + (rows + 1) * padding, cols * w + (cols + 1) * padding)
    grid = np.zeros(shape + ((channels,) if channels > 1 else ()), dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        grid[y:y + h, x:x + w] = t
    return grid


def _with_channels(t: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return t
    if t.ndim == 2:
        t = np.repeat(t[..., None], 3, axis=2)
    if channels == 4 and t.shape[2] == 3:
        t = np.concatenate([t, np.full(t.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return t


def image_format(ext: str) -> str:
    try:
        return IMAGE_FORMATS[ext.lower()]
    except KeyError:
        raise ValueError(f"image extension {ext!r} is not supported; use one of "
                         f"{', '.join(sorted(IMAGE_FORMATS))}") from None


def encode_image(pixels: np.ndarray, fmt: str) -> bytes:
    """Encode an ``H×W``/``H×W×C`` uint8 or uint16 array as ``fmt`` (a Pillow format)."""
    Image = require("PIL.Image", "saving images")
    if pixels.dtype == np.uint16 and (pixels.ndim == 3 or fmt not in _SIXTEEN_BIT):
        pixels = to_uint8(pixels)
    if fmt in _NO_ALPHA and pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def encode_pil(image: Any, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt in _NO_ALPHA and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(buf, format=fmt)
    return buf.getvalue()


def decode_image(f: IO[bytes]) -> np.ndarray:
    """Pixels of an image file: ``H×W`` or ``H×W×C``, uint8 (uint16 for 16-bit grey); an
    animation (a GIF video, even of one frame) as ``T×H×W×C``. A GIF ``gif_bytes`` wrote gives
    back every frame it was given: Pillow writes a run of identical frames as one, shown for
    their summed durations, which its comment's frame duration splits again."""
    Image = require("PIL.Image", "loading images")
    with Image.open(f) as im:
        m = _GIF_VIDEO.fullmatch(im.info.get("comment", b""))
        if getattr(im, "n_frames", 1) == 1 and m is None:
            return _frame_array(im)
        ms = int(m.group(1)) if m else 0
        frames = []
        for fr in _pil_frames(im):
            a = _frame_array(fr)
            frames.extend([a] * (max(1, round(fr.info.get("duration", ms) / ms)) if ms else 1))
        return np.stack(frames)


def _pil_frames(im: Any) -> Iterator[Any]:
    ImageSequence = require("PIL.ImageSequence", "loading animations")
    yield from ImageSequence.Iterator(im)


def _frame_array(im: Any) -> np.ndarray:
    if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
    return np.asarray(im).copy()


# ---- figures -----------------------------------------------------------------------------
def is_figure(obj: Any) -> bool:
    return hasattr(obj, "savefig") and hasattr(obj, "canvas")


def figure_bytes(fig: Any, fmt: str, close: bool = True, **savefig_kw: Any) -> bytes:
    """Render a matplotlib figure as ``fmt`` (any format it supports), then close it."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, **savefig_kw)
    finally:
        if close:
            close_figure(fig)
    return buf.getvalue()


def close_figure(fig: Any) -> None:
    # pyplot tracks figures it made; one made with Figure() directly needs no closing,
    # and importing pyplot only to close would pick a GUI backend in some sessions
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


# ---- video -------------------------------------------------------------------------------
def video_frames(frames: Any, what: str = "video") -> tuple[list[np.ndarray] | np.ndarray, int, int]:
    """Frames as uint8 ``H×W×3`` RGB, and (height, width). Accepts a 4-D/3-D array or a list."""
    if isinstance(frames, (list, tuple)):
        out = [_rgb(to_uint8(to_hwc(f, f"{what} frame {i}"))) for i, f in enumerate(frames)]
    else:
        torch_like = _is_torch(frames)
        a = as_numpy(frames)
        expected = "T×H×W×C, T×H×W (or T×C×H×W for a torch tensor) with C in 1, 3, 4"
        if a.ndim == 4:
            if torch_like and a.shape[1] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
                a = np.moveaxis(a, 1, -1)
            if a.shape[-1] not in (1, 3, 4):
                raise _shape_error(what, a.shape, expected)
            if a.shape[-1] == 1:
                a = a[..., 0]
        elif a.ndim != 3:
            raise _shape_error(what, a.shape, expected)
        out = [_rgb(to_uint8(to_pixels(f, f"{what} frame {i}"))) for i, f in enumerate(a)]
    if not out:
        raise ValueError(f"{what} has no frames")
    sizes = {f.shape[:2] for f in out}
    if len(sizes) > 1:
        raise ValueError(f"{what} frames differ in size {sorted(sizes)}; use one size")
    h, w = out[0].shape[:2]
    return out, h, w


def _rgb(f: np.ndarray) -> np.ndarray:
    if f.ndim == 2:
        return np.repeat(f[..., None], 3, axis=2)
    return np.ascontiguousarray(f[..., :3])


def write_ffmpeg_video(path: str, frames: Iterable[np.ndarray], size: tuple[int, int], fps: float,
                       codec: str | None = "libx264", quality: float | None = 5) -> None:
    """Encode RGB uint8 frames of ``size`` (height, width) to ``path`` (ffmpeg, yuv420p).

    yuv420p needs even sides: an odd height or width is padded by one edge row/column.
    """
    iio_ffmpeg = require("imageio_ffmpeg", "saving videos")
    h, w = size
    ph, pw = h + h % 2, w + w % 2
    gen = iio_ffmpeg.write_frames(path, (pw, ph), pix_fmt_in="rgb24", fps=fps, codec=codec,
                                  quality=quality, macro_block_size=1, ffmpeg_log_level="error")
    gen.send(None)
    try:
        for f in frames:
            if (ph, pw) != (h, w):
                f = np.pad(f, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
            gen.send(np.ascontiguousarray(f))
    finally:
        gen.close()


#: the comment a GIF video carries: its frame duration (``decode_image`` splits merged frames)
_GIF_VIDEO = re.compile(rb"distlog video: (\d+) ms per frame")


def gif_bytes(frames: Sequence[np.ndarray], fps: float) -> bytes:
    Image = require("PIL.Image", "saving GIFs")
    ims = [Image.fromarray(f) for f in frames]
    ms = 10 * max(1, round(100 / fps))  # GIF keeps centiseconds: merged durations stay multiples
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=ms, loop=0,
                comment=f"distlog video: {ms} ms per frame".encode())
    return buf.getvalue()


def read_ffmpeg_video(path: str) -> np.ndarray:
    """Decode a video file to a ``T×H×W×3`` uint8 array."""
    iio_ffmpeg = require("imageio_ffmpeg", "loading videos")
    with warnings.catch_warnings():
        # when ffmpeg exits on its own, read_frames leaves its stdin/stdout pipes to the
        # garbage collector (imageio-ffmpeg 0.8): a ResourceWarning as the generator ends
        warnings.simplefilter("ignore", ResourceWarning)
        gen = iio_ffmpeg.read_frames(path)
        try:
            meta = next(gen)
            w, h = meta["size"]
            frames = [np.frombuffer(fr, np.uint8).reshape(h, w, 3) for fr in gen]
        finally:
            gen.close()
            del gen
    return np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)


# ---- audio -------------------------------------------------------------------------------
#: Hz, when ``save_audio`` is not told the rate (TensorBoard's ``add_audio`` default)
DEFAULT_SAMPLE_RATE = 44_100


def wav_bytes(samples: Any, sample_rate: int = DEFAULT_SAMPLE_RATE, what: str = "audio") -> bytes:
    """PCM WAV: floats in [-1, 1] → 16-bit; int16/int32/uint8 samples are kept."""
    torch_like = _is_torch(samples)
    a = as_numpy(samples)
    if a.ndim == 2 and torch_like:
        a = a.T  # torch audio is channels × samples
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] == 0:
        raise _shape_error(what, a.shape, "N (mono) or N×channels (torch: channels×N)")
    try:  # an int, or a float that is one (8000.5 was cut to 8000 and played at that rate)
        rate = operator.index(sample_rate) if not isinstance(sample_rate, float) else (
            int(sample_rate) if sample_rate.is_integer() else 0)
    except TypeError:
        rate = 0
    if rate <= 0:
        raise ValueError(f"{what}: sample_rate must be a positive int, got {sample_rate!r}; "
                         "e.g. sample_rate=16000")
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} of shape {a.shape} has NaN or inf samples")
        a = np.round(np.clip(a, -1.0, 1.0) * 32767.0).astype("<i2")
    elif a.dtype.newbyteorder("=") in (np.int16, np.int32, np.uint8):  # either byte order
        a = a.astype(a.dtype.newbyteorder("<"))
    else:
        raise ValueError(f"{what} of shape {a.shape} has dtype {a.dtype}; use floats in [-1, 1], "
                         "int16, int32 or uint8")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(a.shape[1])
        w.setsampwidth(a.dtype.itemsize)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(a).tobytes())
    return buf.getvalue()


def read_wav(f: IO[bytes]) -> tuple[np.ndarray, int]:
    """``(samples, sample_rate)``: ``N`` for mono, ``N×channels`` otherwise."""
    with wave.open(f, "rb") as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        data = w.readframes(w.getnframes())
    dtype = {1: np.uint8, 2: np.dtype("<i2"), 4: np.dtype("<i4")}.get(width)
    if dtype is None:
        raise ValueError(f"WAV sample width of {width} bytes is not supported (1, 2 or 4)")
    a = np.frombuffer(data, dtype).reshape(-1, channels)
    return (a[:, 0] if channels == 1 else a).copy(), rate
