"""Media round trips: PNG pixels equal, WAV samples equal, MP4 frame count and size, GIF,
``make_video`` order, figures, grids, and the errors that name an unsupported shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distlog


@pytest.fixture
def files(tmp_path):
    e = distlog.get_logger(str(tmp_path / "root"))
    with e.run("media"):
        yield e.files


rng = np.random.default_rng(0)


@pytest.mark.parametrize("image, expected", [
    (rng.integers(0, 256, (6, 7, 3), dtype=np.uint8), None),
    (rng.integers(0, 256, (6, 7), dtype=np.uint8), None),
    (rng.integers(0, 256, (6, 7, 4), dtype=np.uint8), None),
    (rng.integers(0, 65536, (6, 7), dtype=np.uint16), None),  # 16-bit grey PNG
    (np.ones((5, 4, 1), np.uint8) * 9, np.ones((5, 4), np.uint8) * 9),
    (np.array([[0.0, 0.5], [1.0, 2.0]]), np.array([[0, 128], [255, 255]], np.uint8)),
    (np.array([[True, False]]), np.array([[255, 0]], np.uint8)),
])
def test_png_reads_back_equal(files, image, expected):
    files.save_image("img", image)
    back = files.load("img.png")
    np.testing.assert_array_equal(back, image if expected is None else expected)
    assert back.dtype == (image.dtype if expected is None else expected.dtype)


def test_torch_chw_float_tensor(files):
    t = torch.rand(3, 5, 6)
    files.save_image("chw", t)
    back = files.load("chw.png")
    assert back.shape == (5, 6, 3)
    np.testing.assert_array_equal(back, np.round(t.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    files.save_image("bf16", torch.rand(1, 4, 4, dtype=torch.bfloat16))
    assert files.load("bf16.png").shape == (4, 4)


def test_image_formats_by_extension(files):
    im = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    assert files.save_image("a.jpg", im).media_type == "image/jpeg"  # alpha dropped for JPEG
    assert files.load("a.jpg").shape == (8, 8, 3)
    files.save_image("a.webp", im[..., :3])
    files.save(im[..., :3], "via-save.png")  # save() of an array under an image name
    np.testing.assert_array_equal(files.load("via-save.png"), im[..., :3])
    with pytest.raises(ValueError, match="extension"):
        files.save_image("a.xyz", im)


def test_list_of_images_makes_a_grid(files):
    tiles = [np.full((4, 6, 3), i * 40, np.uint8) for i in range(5)]
    files.save_image("grid", tiles)
    g = files.load("grid.png")
    # 5 images → 3 columns × 2 rows with 2-pixel padding
    assert g.shape == (2 * 4 + 3 * 2, 3 * 6 + 4 * 2, 3)
    assert (g[2:6, 2:8] == 0).all() and (g[2:6, 10:16] == 40).all() and (g[8:12, 10:16] == 160).all()
    with pytest.raises(ValueError, match="differ in size"):
        files.save_image("bad", [np.zeros((4, 4)), np.zeros((5, 4))])


@pytest.mark.parametrize("bad, fragment", [
    (np.zeros((2, 3, 4, 5)), r"\(2, 3, 4, 5\)"),
    (np.zeros((5, 6, 7)), r"\(5, 6, 7\)"),
    (np.zeros(10), r"\(10,\)"),
    (np.zeros((4, 4), np.int64), r"shape \(4, 4\) has dtype int64"),
    (np.array([[np.nan, 0.5]]), "NaN"),
    (np.zeros((0, 4)), r"\(0, 4\)"),
])
def test_unsupported_images_name_the_shape(files, bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        files.save_image("bad", bad)


def test_wav_reads_back_equal(files):
    mono = rng.integers(-32768, 32768, 1000, dtype=np.int16)
    files.save_audio("mono", mono, 16000)
    samples, rate = files.load("mono.wav")
    assert rate == 16000 and samples.dtype == np.int16
    np.testing.assert_array_equal(samples, mono)
    stereo = rng.integers(-32768, 32768, (500, 2), dtype=np.int16)
    files.save_audio("stereo.wav", stereo, 8000)
    np.testing.assert_array_equal(files.load("stereo.wav")[0], stereo)
    files.save_audio("float", np.array([0.0, 0.5, -1.0, 2.0]), 100)
    np.testing.assert_array_equal(files.load("float.wav")[0], [0, 16384, -32767, 32767])
    files.save_audio("torch", torch.zeros(2, 50), 100)  # torch: channels × samples
    assert files.load("torch.wav")[0].shape == (50, 2)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        files.save_audio("bad", np.zeros((2, 3, 4)), 100)


@pytest.mark.parametrize("dtype", [">i2", ">i4", "<i4"])
def test_wav_keeps_integer_samples_of_either_byte_order(files, dtype):
    samples = np.array([1, -2, 300, -30000], dtype=dtype)  # e.g. read from a big-endian AIFF
    files.save_audio("pcm.wav", samples, 16000)
    back, rate = files.load("pcm.wav")
    assert rate == 16000 and back.dtype.itemsize == samples.dtype.itemsize
    np.testing.assert_array_equal(back, samples)


def test_wav_without_a_sample_rate_gets_the_documented_default(files):
    from distlog.media import DEFAULT_SAMPLE_RATE

    mono = rng.integers(-32768, 32768, 300, dtype=np.int16)
    files.save_audio("norate", mono)
    samples, rate = files.load("norate.wav")
    assert rate == DEFAULT_SAMPLE_RATE == 44_100
    np.testing.assert_array_equal(samples, mono)


@pytest.mark.timeout(120)
def test_mp4_decodes_with_the_right_frame_count_and_size(files):
    frames = rng.integers(0, 256, (12, 32, 48, 3), dtype=np.uint8)
    rec = files.save_video("clip", frames, fps=10)
    assert rec.path == "clip.mp4" and rec.media_type == "video/mp4"
    back = files.load("clip.mp4")
    assert back.shape == (12, 32, 48, 3)
    files.save_video("odd", np.zeros((3, 15, 17), np.uint8), fps=5)  # grey, odd sides padded
    assert files.load("odd.mp4").shape == (3, 16, 18, 3)
    files.save_video("tchw", torch.rand(4, 3, 16, 16), fps=5)  # torch T×C×H×W
    assert files.load("tchw.mp4").shape == (4, 16, 16, 3)


def test_gif_keeps_frames_and_size(files):
    frames = [np.full((10, 12, 3), v, np.uint8) for v in (0, 120, 250)]
    files.save_video("anim.gif", frames, fps=4)
    back = files.load("anim.gif")
    assert back.shape[:3] == (3, 10, 12)
    assert [int(f[..., 0].mean()) for f in back] == [0, 120, 250]
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        files.save_video("bad", np.zeros((2, 3)), fps=4)


@pytest.mark.parametrize("fps", [4, 30, 500])
def test_a_gif_video_gives_back_every_frame_even_repeated_ones(files, fps):
    """Pillow writes identical consecutive frames as one longer frame; they come back apart."""
    values = (0, 0, 120, 250, 250, 250, 0)
    files.save_video("rep.gif", [np.full((8, 8, 3), v, np.uint8) for v in values], fps=fps)
    back = files.load("rep.gif")
    assert back.shape == (7, 8, 8, 3) and [int(f[..., 0].mean()) for f in back] == list(values)
    files.save_video("one.gif", np.zeros((1, 8, 8, 3), np.uint8), fps=fps)
    assert files.load("one.gif").shape == (1, 8, 8, 3)  # a video of one frame, not an image
    files.save_image("still.gif", np.zeros((8, 8, 3), np.uint8))
    assert files.load("still.gif").shape == (8, 8, 3)


@pytest.mark.timeout(120)
def test_a_loaded_gif_video_saves_back_and_feeds_make_video(files):
    files.save_video("anim.gif", [np.full((6, 8, 3), v, np.uint8) for v in (0, 120, 250)], fps=4)
    anim = files.load("anim.gif")
    files.save(anim, "copy.gif")  # T×H×W×C as .gif: a video, not an image
    np.testing.assert_array_equal(files.load("copy.gif"), anim)
    files.save_image("still.png", np.full((6, 8, 3), 60, np.uint8))
    files.make_video("*", "mv.gif", fps=4, sort="name")  # anim.gif, copy.gif, still.png
    back = files.load("mv.gif")
    assert [int(f[..., 0].mean()) for f in back] == [0, 120, 250, 0, 120, 250, 60]


@pytest.mark.timeout(120)
def test_make_video_from_a_pattern_in_the_requested_order(files):
    frames = files("frames")
    order = [7, 2, 10, 0, 5, 1, 9, 3, 8, 4, 6, 11]  # saved shuffled
    for i in order:
        frames.save_image(f"f_{i}", np.full((16, 16, 3), i * 20, np.uint8))
    frames.save_image("other", np.zeros((16, 16, 3), np.uint8))

    def brightness(name):
        return [int(round(f.mean() / 20)) for f in frames.load(name)]

    frames.make_video("f_*.png", "natural.mp4", fps=5)
    assert brightness("natural.mp4") == list(range(12))  # f_2 before f_10
    frames.make_video("f_*.png", "by-name.gif", fps=5, sort="name")
    assert brightness("by-name.gif") == sorted(range(12), key=lambda i: f"f_{i}.png")
    frames.make_video("f_*.png", "by-time.gif", fps=5, sort="time")
    assert brightness("by-time.gif") == order
    frames.make_video("f_*.png", "reverse.gif", fps=5, sort=lambda r: -int(r.name[2:-4]))
    assert brightness("reverse.gif") == list(range(11, -1, -1))
    with pytest.raises(FileNotFoundError, match="no saved images"):
        frames.make_video("nothing_*.png", "x.mp4")


@pytest.mark.filterwarnings("ignore::UserWarning")  # matplotlib may warn about fonts/backends
def test_savefig_any_format_and_closes_the_figure(files):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.plot([0, 1], [1, 0])
    n = plt.get_fignums()
    rec = files.savefig(fig, "plot.svg")
    assert rec.media_type == "image/svg+xml" and fig.number not in plt.get_fignums()
    assert b"<svg" in files.read_bytes("plot.svg")
    assert len(plt.get_fignums()) == len(n) - 1
    fig2 = plt.figure(figsize=(2, 2), dpi=50)
    files.save_image("fig", fig2)  # log_image(name, fig) from the design document
    assert files.load("fig.png").shape == (100, 100, 4)
    assert fig2.number not in plt.get_fignums()


def test_missing_media_package_names_the_extra(monkeypatch, files):
    import sys

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails like a missing package
    with pytest.raises(ImportError, match=r"pip install 'distlog\[media\]'"):
        files.save_video("clip", np.zeros((2, 4, 4, 3), np.uint8), fps=2)
