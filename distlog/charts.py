"""ChartBuilder: line, scatter and bar charts over query results, image grids; ``exp.charts``.

    from distlog.charts import ChartBuilder
    run = distlog.open_run("runs/mnist/run-a")
    cb = ChartBuilder()
    cb.line_chart({"run-a": run.metrics["train/loss"]}, y="value", band=("min", "max"),
                  title="train/loss").save("loss.png")
    bands = distlog.open_root("runs").read_metrics("train/loss@mean", "mnist", bin_size=50)
    cb.line_chart(bands, y="mean", band=("min", "max"), group=["lr"]).save("sweep.png")

Query results are pandas DataFrames (or anything with named columns). Data for a chart is one
DataFrame, a ``{label: DataFrame}`` mapping (one line per label, e.g. several runs), or one
long DataFrame split into labelled lines by ``group`` columns. Figures are made with
``matplotlib.figure.Figure`` directly — no pyplot, no global state, no GUI backend — so
charts can be built from any thread or a server. matplotlib is the ``cli`` extra.
"""

from __future__ import annotations

import io
import os
from typing import Any, Mapping, Sequence

import numpy as np

Data = Any  # a DataFrame, {label: DataFrame}, or [(label, DataFrame)]


class Chart:
    """A rendered figure: ``save(path)`` (format from the extension, PNG by default) or ``png()``."""

    def __init__(self, figure: Any) -> None:
        self.figure = figure

    @property
    def axes(self) -> list[Any]:
        return list(self.figure.axes)

    def save(self, path: str | os.PathLike, dpi: int | None = None) -> str:
        path = os.fspath(path)
        fmt = os.path.splitext(path)[1][1:].lower() or "png"
        self.figure.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
        return path

    def png(self, dpi: int | None = None) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return buf.getvalue()


def _figure(width: float, height: float, dpi: int) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("charts need matplotlib: pip install 'distlog[cli]'") from e
    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def labelled(data: Data, group: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """``data`` as ``[(label, frame)]`` (see the module docstring)."""
    if group:
        frames = []
        for values, part in data.groupby(list(group), sort=False, dropna=False):
            values = values if isinstance(values, tuple) else (values,)
            frames.append((", ".join(f"{g}={v}" for g, v in zip(group, values)), part))
        return frames
    if isinstance(data, Mapping):
        return [(str(k), v) for k, v in data.items()]
    if isinstance(data, (list, tuple)):
        return [(str(k), v) for k, v in data]
    return [("", data)]


def _col(frame: Any, name: str) -> np.ndarray:
    try:
        v = frame[name]
    except (KeyError, IndexError):
        cols = list(getattr(frame, "columns", []))
        raise KeyError(f"no column {name!r} to plot; columns: {', '.join(map(str, cols))}") from None
    v = np.asarray(v)
    if v.dtype.kind == "f":
        v = np.where(np.isfinite(v), v, np.nan)  # inf would stretch the axis to nothing
    return v


class ChartBuilder:
    """Builds charts; each method returns a ``Chart``. Sizes are in inches at ``dpi``."""

    def __init__(self, width: float = 8.0, height: float = 4.5, dpi: int = 100) -> None:
        self.width, self.height, self.dpi = width, height, dpi

    # ---- line charts -----------------------------------------------------------------------
    def line_chart(self, data: Data, *, x: str = "step", y: str = "value",
                   band: tuple[str, str] | None = None, group: Sequence[str] | None = None,
                   title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                   logx: bool = False, logy: bool = False) -> Chart:
        """One line per label; ``band=(low, high)`` shades between two columns (e.g. the
        reduced ``min`` and ``max``, or a sweep's percentiles)."""
        return self.line_charts({title or "": labelled(data, group)}, x=x, y=y, band=band,
                                xlabel=xlabel, ylabel=ylabel or y, logx=logx, logy=logy)

    def line_charts(self, panels: Mapping[str, Data], *, x: str = "step", y: str = "value",
                    band: tuple[str, str] | None = None, xlabel: str | None = None,
                    ylabel: str | None = None, logx: bool = False, logy: bool = False) -> Chart:
        """Stacked line charts sharing the x axis, one per ``{panel title: data}``. A label keeps
        its colour in every panel. Without ``ylabel`` each y axis is labelled with its panel
        title (a metric key) and, unless it is ``value``, the column ``y``."""
        n = max(1, len(panels))
        fig = _figure(self.width, self.height * (1 if n == 1 else 0.6 * n + 0.4), self.dpi)
        axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
        colors: dict[str, str] = {}
        for ax, (name, data) in zip(axes, panels.items()):
            series = labelled(data)
            for label, frame in series:
                color = colors.setdefault(label, f"C{len(colors) % 10}")
                xs = _col(frame, x)
                if x == "time":
                    xs = xs.astype("datetime64[us]") if xs.dtype.kind != "M" else xs
                ax.plot(xs, _col(frame, y), color=color, lw=1.4, label=label or None)
                if band is not None:
                    ax.fill_between(xs, _col(frame, band[0]), _col(frame, band[1]), color=color,
                                    alpha=0.2, lw=0)
            if name:
                ax.set_title(name, fontsize="medium")
            if ylabel is None:  # the panel's key, and the statistic when it is not the value
                ax.set_ylabel((name if y == "value" else f"{name} ({y})") if name else y)
            else:
                ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
            if logy:
                ax.set_yscale("log")
            if logx:
                ax.set_xscale("log")
            if sum(1 for label, _ in series if label) > 1 or (len(series) == 1 and series[0][0]):
                ax.legend(fontsize="small", loc="best")
        axes[-1].set_xlabel(xlabel or x)
        if band is not None:
            fig.text(1.0, 0.0, f"band: {band[0]}..{band[1]}", ha="right", va="bottom",
                     fontsize="x-small", alpha=0.6)
        return Chart(fig)

    # ---- scatter and bars --------------------------------------------------------------------
    def scatter_plot(self, data: Data, *, x: str, y: str, group: Sequence[str] | None = None,
                     title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                     logx: bool = False, logy: bool = False, annotate: str | None = None) -> Chart:
        """Points ``(x, y)``, one colour per label (e.g. final loss against learning rate)."""
        fig = _figure(self.width, self.height, self.dpi)
        ax = fig.subplots()
        series = labelled(data, group)
        for i, (label, frame) in enumerate(series):
            xs, ys = _col(frame, x), _col(frame, y)
            ax.scatter(xs, ys, color=f"C{i % 10}", s=28, label=label or None)
            if annotate:
                for xv, yv, text in zip(xs, ys, np.asarray(frame[annotate])):
                    ax.annotate(str(text), (xv, yv), fontsize="x-small", xytext=(3, 3),
                                textcoords="offset points")
        self._finish(ax, title, xlabel or x, ylabel or y, logx, logy, len(series) > 1)
        return Chart(fig)

    def bar_chart(self, data: Data, *, x: str, y: str, err: str | tuple[str, str] | None = None,
                  title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                  horizontal: bool = False, logy: bool = False) -> Chart:
        """One bar per row (``x`` names it). ``err`` is a column of symmetric errors or
        ``(low, high)`` columns drawn as error bars (e.g. a sweep's min and max)."""
        fig = _figure(self.width, self.height, self.dpi)
        ax = fig.subplots()
        (_, frame), = labelled(data)[:1] or [("", data)]
        names = [str(v) for v in np.asarray(frame[x])]
        ys = _col(frame, y).astype(float)
        yerr = None
        if isinstance(err, str):
            yerr = _col(frame, err)
        elif err is not None:
            yerr = np.vstack([ys - _col(frame, err[0]), _col(frame, err[1]) - ys])
        pos = np.arange(len(names))
        if horizontal:
            ax.barh(pos, ys, xerr=yerr, color="C0", alpha=0.85, capsize=3)
            ax.set_yticks(pos, names)
        else:
            ax.bar(pos, ys, yerr=yerr, color="C0", alpha=0.85, capsize=3)
            ax.set_xticks(pos, names, rotation=30 if max(map(len, names), default=0) > 8 else 0,
                          ha="right" if max(map(len, names), default=0) > 8 else "center")
        if horizontal:
            self._finish(ax, title, ylabel or y, xlabel or x, logy, False, False)
        else:
            self._finish(ax, title, xlabel or x, ylabel or y, False, logy, False)
        return Chart(fig)

    @staticmethod
    def _finish(ax: Any, title: str | None, xlabel: str, ylabel: str, logx: bool, logy: bool,
                legend: bool) -> None:
        if title:
            ax.set_title(title, fontsize="medium")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.set_axisbelow(True)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        if legend:
            ax.legend(fontsize="small", loc="best")


# ---- media views ---------------------------------------------------------------------------
def _grid_shape(n: int, columns: int | None) -> tuple[int, int]:
    cols = max(1, min(n, columns or int(np.ceil(np.sqrt(n)))))
    return int(np.ceil(n / cols)), cols


def _show(ax: Any, image: np.ndarray, title: str) -> None:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    ax.set_title(title, fontsize="x-small")
    ax.set_axis_off()


def _image_grid(builder: "ChartBuilder", images: Sequence[tuple[str, Any]], columns: int | None,
                title: str | None) -> Chart:
    if not images:
        raise ValueError("image grid: no images to show (expected [(title, HxW or HxWxC array)])")
    rows, cols = _grid_shape(len(images), columns)
    fig = _figure(builder.width, builder.width * rows / cols, builder.dpi)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, image) in zip(axes, images):
        _show(ax, image, name)
    for ax in axes[len(images):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize="medium")
    return Chart(fig)


def _pick_frames(n_frames: int, n: int) -> list[int]:
    return sorted({int(round(i)) for i in np.linspace(0, n_frames - 1, min(n, n_frames))})


class RunCharts:
    """``exp.charts``: the chart views of the design document for the active run.

    ``line_chart``, ``scatter_plot`` and ``bar_chart`` take a *query*: a metric key of this run
    (``"train/loss"``), several keys (``["train/loss", "val/loss"]``: one line each), or any
    query result (a DataFrame, ``{label: DataFrame}``); ``images(pattern)`` shows the saved
    images whose names match as a grid (newest version each), ``video(name)`` a saved video's
    frames, evenly spaced. Every method returns a ``Chart`` (``.save(path)``, ``.png()``);
    ``exp.files.savefig(chart.figure, "loss.png")`` stores one with the run.
    """

    def __init__(self, run: Any, builder: ChartBuilder | None = None) -> None:
        self._run = run
        self.builder = builder or ChartBuilder()

    def _reader(self) -> Any:
        from .query.run_reader import RunReader

        self._run.metrics.commit()  # rows handed to the writer are readable from here on
        return RunReader(self._run.storage)

    def _data(self, query: Any, rank: int | None = None) -> Any:
        if isinstance(query, str):
            query = [query]
        if isinstance(query, (list, tuple)) and all(isinstance(q, str) for q in query):
            metrics = self._reader().metrics
            return {key: metrics.frame(key, rank) for key in query}
        return query

    def line_chart(self, query: Any, *, rank: int | None = None, **kw: Any) -> Chart:
        """Lines of ``y`` (default ``value``) against ``x`` (default ``step``); keyword
        arguments as ``ChartBuilder.line_chart`` (``band=("min", "max")``, ``logy`` ...)."""
        if isinstance(query, str):
            kw.setdefault("title", query)
            kw.setdefault("ylabel", query)
        return self.builder.line_chart(self._data(query, rank), **kw)

    def scatter_plot(self, query: Any, *, x: str = "step", y: str = "value",
                     rank: int | None = None, **kw: Any) -> Chart:
        if isinstance(query, str):
            kw.setdefault("ylabel", query)
        return self.builder.scatter_plot(self._data(query, rank), x=x, y=y, **kw)

    def bar_chart(self, query: Any, *, x: str = "step", y: str = "value",
                  rank: int | None = None, **kw: Any) -> Chart:
        data = self._data(query, rank)
        if isinstance(data, Mapping) and len(data) == 1:
            (key, data), = data.items()
            kw.setdefault("ylabel", key)
        return self.builder.bar_chart(data, x=x, y=y, **kw)

    def images(self, pattern: str = "*", *, columns: int | None = None, limit: int = 64,
               title: str | None = None) -> Chart:
        """The saved images whose names match ``pattern`` (fnmatch, relative to the files
        namespace), oldest save first, at most ``limit``, each titled with its name and step."""
        files = self._run.files
        recs = [r for r in files.list(pattern) if r.media_type.startswith("image/")
                and not r.name.lower().endswith(".gif")]
        if not recs:
            raise ValueError(f"no saved image matches {pattern!r}; saved files: "
                             f"{', '.join(r.path for r in files.list()) or 'none'}")
        recs = sorted(recs, key=lambda r: (r.time, r.path))[:limit]
        shown = [(r.path if r.step is None else f"{r.path} (step {r.step})",
                  files.load(r.path, r.version)) for r in recs]
        return _image_grid(self.builder, shown, columns, title)

    def video(self, name: str, *, frames: int = 8, columns: int | None = None,
              title: str | None = None) -> Chart:
        """``frames`` evenly spaced frames of the saved video (or GIF) ``name``, in order."""
        clip = np.asarray(self._run.files.load(name))
        if clip.ndim not in (3, 4):
            raise ValueError(f"{name!r} is not a video (loaded an array of shape {clip.shape})")
        picks = _pick_frames(len(clip), max(1, frames))
        return _image_grid(self.builder, [(f"frame {i}", clip[i]) for i in picks], columns,
                           title or f"{name}: {len(clip)} frames")


def image_grid(images: Sequence[tuple[str, Any]], *, columns: int | None = None,
               title: str | None = None, builder: ChartBuilder | None = None) -> Chart:
    """Arrays (``H×W``, ``H×W×3`` or ``H×W×4``) in a grid, each with its title."""
    return _image_grid(builder or ChartBuilder(), images, columns, title)


def telemetry_heatmap(m: Any, field: str = "step_time", width: float = 9.0,
                      height: float | None = None) -> "Chart":
    """A rank x flush heat map of one telemetry field: ``m`` is ``run.telemetry.matrix(field)``
    (``distlog ranks RUN --plot``)."""
    height = height or min(12.0, 2.0 + 0.25 * m.ranks)
    fig = _figure(width, height, 100)
    ax = fig.add_subplot(1, 1, 1)
    vals = np.ma.masked_invalid(m.values.T)
    img = ax.pcolormesh(_edges(m.step), np.arange(m.ranks + 1) - 0.5, vals, cmap="viridis",
                        shading="flat")
    ax.set_xlabel("step")
    ax.set_ylabel("rank")
    if m.ranks <= 32:
        ax.set_yticks(range(m.ranks))
    unit = {"step_time": "s / step", "interval": "s", "wait": "s", "wait_prev": "s",
            "rss": "bytes", "cpu_percent": "%", "gpu_util": "%"}.get(field, "bytes" if field.startswith("gpu") else "")
    fig.colorbar(img, ax=ax, label=f"{field} ({unit})" if unit else field)
    ax.set_title(f"{field} per rank and flush")
    return Chart(fig)


def _edges(steps: np.ndarray) -> np.ndarray:
    """Cell edges around each flush's step (midpoints; flushes need not be evenly spaced)."""
    s = np.asarray(steps, dtype=np.float64)
    if len(s) < 2:
        return np.array([s[0] - 0.5, s[0] + 0.5]) if len(s) else np.array([0.0, 1.0])
    mid = (s[1:] + s[:-1]) / 2
    return np.concatenate([[s[0] - (mid[0] - s[0])], mid, [s[-1] + (s[-1] - mid[-1])]])
