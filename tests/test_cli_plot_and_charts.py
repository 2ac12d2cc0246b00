"""`distlog plot` and the ChartBuilder render real PNGs; `export` to parquet round-trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distlog.charts import ChartBuilder
from distlog.cli import main
from distlog.query import open_root, open_run
from support.cli_tree import build_tree

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tree(tmp_path):
    return build_tree(tmp_path / "root")


def _png_size(path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def _colours(path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return len(set(im.convert("RGB").getdata()))


def test_plot_overlays_runs_of_a_folder_with_bands(tree, capsys):
    out = tree / "sweep.png"
    code = main(["plot", str(tree / "mnist" / "sweep"), "train/loss", "val/acc", "-o", str(out),
                 "--title", "sweep"])
    assert code == 0, capsys.readouterr().err
    assert "2 run(s), 2 key(s)" in capsys.readouterr().err
    w, h = _png_size(out)
    assert w > 500 and h > 500  # two stacked panels
    assert _colours(out) > 50  # lines, band shading and text, not a blank canvas


def test_plot_of_explicit_runs_and_svg(tree, capsys):
    out = tree / "two.svg"
    a, c = str(tree / "mnist/sweep/run-a"), str(tree / "mnist/other/run-c")
    assert main(["plot", a, c, "train/loss", "loss", "-o", str(out), "--no-band", "--logy"]) == 0
    assert out.read_text().lstrip().startswith("<?xml")


def test_chart_builder_line_scatter_bar(tree):
    run = open_run(tree / "mnist/sweep/run-a")
    cb = ChartBuilder(width=5, height=3, dpi=80)
    line = cb.line_chart({"run-a": run.metrics["train/loss"]}, band=("min", "max"), title="loss")
    assert line.png().startswith(PNG)
    table = open_root(tree).table(metrics=["train/loss"])
    scatter = cb.scatter_plot(table.dropna(subset=["train/loss"]), x="lr", y="train/loss",
                              annotate="run_id", logx=True)
    path = scatter.save(tree / "scatter.png")
    assert min(_png_size(path)) > 100 and _colours(path) > 10
    bars = cb.bar_chart(pd.DataFrame({"run": ["a", "b"], "loss": [0.25, 0.9], "lo": [0.2, 0.8],
                                      "hi": [0.3, 1.0]}), x="run", y="loss", err=("lo", "hi"))
    assert bars.png().startswith(PNG)


def test_line_chart_groups_a_long_frame_and_reports_missing_columns():
    df = pd.DataFrame({"lr": [0.1] * 3 + [0.01] * 3, "step": [0, 1, 2] * 2,
                       "mean": np.arange(6.0), "min": np.arange(6.0) - 1, "max": np.arange(6.0) + 1})
    chart = ChartBuilder().line_chart(df, y="mean", band=("min", "max"), group=["lr"])
    labels = [t.get_text() for t in chart.axes[0].get_legend().get_texts()]
    assert labels == ["lr=0.1", "lr=0.01"]
    with pytest.raises(KeyError, match="columns: lr, step, mean, min, max"):
        ChartBuilder().line_chart(df, y="p50")


def test_export_parquet_round_trip(tree, capsys):
    out = tree / "a.parquet"
    assert main(["export", str(tree / "mnist/sweep/run-a"), "--format", "parquet", "-o", str(out)]) == 0
    df = pd.read_parquet(out)
    expected = open_run(tree / "mnist/sweep/run-a").metrics.to_frame()
    pd.testing.assert_frame_equal(df, expected)
    assert list(df.columns) == ["key", "step", "time", "value", "mean", "min", "max", "sum",
                                "count", "nonfinite", "argmin_rank", "argmax_rank"]
    # the format follows the file's name when --format is not given (it wrote CSV into it)
    named = tree / "b.parquet"
    assert main(["export", str(tree / "mnist/sweep/run-a"), "-o", str(named)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(named), expected)
    text = tree / "c.csv"
    assert main(["export", str(tree / "mnist/sweep/run-a"), "-o", str(text)]) == 0
    assert text.read_text().startswith("key,step,time,")


def test_plot_labels_each_y_axis_with_its_key(tree, capsys, monkeypatch):
    from distlog.charts import Chart

    drawn: list[Chart] = []
    monkeypatch.setattr(Chart, "save", lambda self, path, dpi=None: drawn.append(self) or str(path))
    a = str(tree / "mnist/sweep/run-a")
    assert main(["plot", a, "train/loss", "val/acc", "-o", str(tree / "p.png")]) == 0
    assert [ax.get_ylabel() for ax in drawn[0].axes] == ["train/loss", "val/acc"]
    assert main(["plot", a, "train/loss", "--stat", "max", "-o", str(tree / "q.png")]) == 0
    assert [ax.get_ylabel() for ax in drawn[1].axes] == ["train/loss (max)"]


def test_exp_charts_views_of_the_run(tmp_path):
    import distlog

    exp = distlog.get_logger(str(tmp_path / "root"))
    rng = np.random.default_rng(3)
    images = {f"samples/img{i}.png": rng.integers(0, 256, (8, 12, 3), dtype=np.uint8) for i in range(3)}
    clip = np.stack([np.full((16, 16, 3), 20 * t, np.uint8) for t in range(10)])
    with exp.run("charts"):
        for step in range(5):
            exp.metrics.log(step=step, loss=1.0 / (step + 1), acc=0.1 * step)
        for i, (name, img) in enumerate(images.items()):
            exp.files.save_image(name, img, step=i)
        exp.files.save_video("clip", clip, fps=5)
        charts = exp.charts

        line = charts.line_chart("loss")
        (ax,) = line.axes
        np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0 / (s + 1) for s in range(5)])
        assert ax.get_ylabel() == "loss" and ax.get_title() == "loss"
        two = charts.line_chart(["loss", "acc"])
        assert [ln.get_label() for ln in two.axes[0].lines] == ["loss", "acc"]

        scatter = charts.scatter_plot("acc")
        np.testing.assert_allclose(scatter.axes[0].collections[0].get_offsets()[:, 1],
                                   [0.1 * s for s in range(5)])
        bars = charts.bar_chart("loss")
        np.testing.assert_allclose([p.get_height() for p in bars.axes[0].patches],
                                   [1.0 / (s + 1) for s in range(5)])
        assert bars.axes[0].get_ylabel() == "loss"

        grid = charts.images("samples/*.png")
        shown = [a for a in grid.axes if a.images]
        assert [a.get_title() for a in shown] == [f"samples/img{i}.png (step {i})" for i in range(3)]
        for a, img in zip(shown, images.values()):
            np.testing.assert_array_equal(np.asarray(a.images[0].get_array()), img)  # PNG: lossless
        assert grid.png().startswith(PNG)

        video = charts.video("clip.mp4", frames=4)
        frames = [a for a in video.axes if a.images]
        assert [a.get_title() for a in frames] == ["frame 0", "frame 3", "frame 6", "frame 9"]
        # lossy codec: the frames' brightness still rises in order
        means = [float(np.asarray(a.images[0].get_array()).mean()) for a in frames]
        assert means == sorted(means) and means[-1] - means[0] > 100
        with pytest.raises(ValueError, match="no saved image matches 'nothing\\*'"):
            charts.images("nothing*")
