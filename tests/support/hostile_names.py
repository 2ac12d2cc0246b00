"""Hostile names and the campaign that runs one through every place a name enters distlog.

``exercise(url, name)`` uses ``name`` as an experiment name, a run id, a metrics namespace, a
collected metric key, a ``log()`` key, a histogram name, a files namespace and a file name. Each call either
raises ``ValueError`` at once or is expected to work end to end; ``exercise`` returns what
was accepted, so ``verify`` can check that it lists, reads back and survives ``gc --grace 0``.
"""

from __future__ import annotations

import io
import json
import random
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import distlog
from distlog import layout as L
from distlog.cli import main as cli

SEED = 10
STEPS = 3
PLACES = ("experiment", "run", "namespace", "metric key", "log key", "histogram name",
          "files namespace", "file name")

FIXED = [
    # length: 255 bytes is the limit of one path part, counted in UTF-8
    "n" * 254, "n" * 255, "n" * 256, "n" * 400,
    "é" * 127, "é" * 128,                      # 254 / 256 bytes in 127 / 128 characters
    "€" * 85, "😀" * 63 + "abc", "😀" * 64,     # 255 / 255 / 256 bytes
    "a/" + "b" * 255, "a/" * 7 + "b", "x/" * 130,  # parts in range, whole names long or deep
    # reserved by Zarr, by distlog's layout, hidden
    "zarr.json", ".zattrs", ".zarray", ".zgroup", ".zmetadata", "__meta", L.STORE_DIR, ".hidden",
    "...", ".", "..", L.RUN_FILE, L.PARAMS_FILE, L.README_FILE, L.RANKS_DIR,
    L.rank_dir(1).rsplit("/", 1)[1], L.LOGS_DIR, L.MANIFEST_DIR, L.table_zarr(L.SCALARS_TABLE),
    L.table_commit(L.SCALARS_TABLE), L.manifest_path(0).rsplit("/", 1)[1], "x.seg", "c",
    # paths and escapes
    "a/../b", "a/./b", "a//b", "a/b", "/abs", "%2e%2e", "%2e%2e/%2e%2e", "%2F", "..%2f..",
    "~", "$HOME", "back\\slash",
    # whitespace, dots, controls
    "with space", " lead", "trail ", "trail.", "tab\tx", "new\nline", "ctrl\x01", "del\x7f",
    "nul\x00", "\u200b", "e\u0301", "\ud800",
    # unicode, Windows-reserved, glob and URL characters
    "Привет мир", "数据集", "CON", "aux", "NUL.txt", "star*", "br[1]", "q?versionId=1",
    "hash#1", "colon:x", "semi;x", "quote'\"", "-dash", "@at", "hash#1 a+b=c&d",
    "Привет мир: ~$HOME",
]

_ALPHABET = list("abcXYZ019-_.~ %#:;@+=,") + ["é", "€", "😀", "/", "..", "\t", "zarr.json", ".z"]


def seeded_names(seed: int = SEED, n: int = 12) -> list[str]:
    """``n`` random names mixing the pieces above (same seed, same names)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        pieces = [rng.choice(_ALPHABET) for _ in range(rng.randint(1, 8))]
        name = "".join(pieces)
        if rng.random() < 0.2:
            name = name * rng.randint(20, 80)  # long
        out.append(name)
    return out


def all_names() -> list[str]:
    return FIXED + seeded_names()


@dataclass
class Accepted:
    """What the campaign expects to find under the root afterwards."""

    runs: set[tuple[str, str]] = field(default_factory=set)
    #: (experiment, run id) -> {metric key: stored values, one per step}
    series: dict[tuple[str, str], dict[str, list[float]]] = field(default_factory=dict)
    #: (experiment, run id) -> {logical file path: bytes}
    files: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    #: (experiment, run id) -> {histogram name: the values logged, one list per step}
    histograms: dict[tuple[str, str], dict[str, list[list[float]]]] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)  # place -> ValueError message


def _try(acc: Accepted, place: str, fn: Any) -> bool:
    try:
        fn()
        return True
    except ValueError as e:
        acc.rejected[place] = str(e)
        return False


def exercise(url: str, name: str, **options: Any) -> Accepted:
    """Use ``name`` in every place; a ValueError is a rejection, anything else propagates."""
    exp = distlog.get_logger(url, **options)
    acc = Accepted()

    def run(experiment: str, run_id: str, body: Any) -> None:
        """Start a run, log a good key at every step next to whatever ``body`` adds."""
        rid = (experiment, run_id)
        series = acc.series.setdefault(rid, {})
        files = acc.files.setdefault(rid, {})
        with exp.experiment(experiment), exp.run(run_id):
            acc.runs.add(rid)
            for step in range(STEPS):
                exp.metrics.log(step=step, good=float(step))
                series.setdefault("good", []).append(float(step))
                body(step, series, files)
                exp.metrics.flush()

    def ns_place(step: int, series: dict, files: dict) -> None:
        if "namespace" in acc.rejected:
            return
        if _try(acc, "namespace", lambda: exp.metrics(name).log(step=step, v=step + 0.5)):
            series.setdefault(f"{name}/v", []).append(step + 0.5)

    # experiment (with the namespace place inside)
    if not _try(acc, "experiment", lambda: run(name, "r", ns_place)):
        acc.runs.discard((name, "r"))
        acc.series.pop((name, "r"), None)
        acc.files.pop((name, "r"), None)
        acc.rejected.pop("namespace", None)
        run("fixed-exp-a", "r", ns_place)

    # run id (with the collected key and the files places inside)
    def key_and_files(step: int, series: dict, files: dict) -> None:
        if "metric key" not in acc.rejected and _try(
                acc, "metric key", lambda: exp.metrics.collect(step=step, **{name: 2.0 * step})):
            series.setdefault(name, []).append(2.0 * step)
        if step:
            return
        data = f"bytes of {name!r}".encode("utf-8", "surrogatepass")
        if _try(acc, "files namespace", lambda: exp.files(name).save(data, "f.bin")):
            files[f"{name}/f.bin"] = data
        if _try(acc, "file name", lambda: exp.files("fn").save(data, name)):
            files[f"fn/{name}"] = data

    if not _try(acc, "run", lambda: run("fixed-exp-b", name, key_and_files)):
        acc.runs.discard(("fixed-exp-b", name))
        acc.series.pop(("fixed-exp-b", name), None)
        acc.files.pop(("fixed-exp-b", name), None)
        for p in ("metric key", "files namespace", "file name"):
            acc.rejected.pop(p, None)
        run("fixed-exp-b", "fixed-run", key_and_files)

    # log() key
    def log_place(step: int, series: dict, files: dict) -> None:
        if "log key" not in acc.rejected and _try(
                acc, "log key", lambda: exp.metrics.log(step=step, **{name: 3.0 * step})):
            series.setdefault(name, []).append(3.0 * step)

    hists = acc.histograms.setdefault(("fixed-exp-c", "fixed-run"), {})

    def log_and_histogram(step: int, series: dict, files: dict) -> None:
        log_place(step, series, files)
        values = [0.0, 1.0, 2.0, float(step)]
        if "histogram name" not in acc.rejected and _try(
                acc, "histogram name",
                lambda: exp.metrics.log_histogram(name, values, bins=4, step=step)):
            hists.setdefault(name, []).append(values)

    run("fixed-exp-c", "fixed-run", log_and_histogram)
    exp.close()
    return acc


def ls_runs(url: str, *extra: str) -> set[tuple[str, str]]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli(["ls", url, "--format", "json", *extra])
    assert code == 0, err.getvalue()
    text = out.getvalue().strip()
    rows = json.loads(text) if text.startswith("[") else [json.loads(x) for x in text.splitlines()]
    return {(r["experiment"], r["run_id"]) for r in rows}


def gc(url: str, *extra: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli(["gc", url, "--grace", "0", *extra])
    return code, out.getvalue() + err.getvalue()


def verify(url: str, acc: Accepted, *ls_extra: str, **options: Any) -> None:
    """Everything accepted lists, reads back, and survives ``gc --grace 0``."""
    root = distlog.open_root(url, **options)
    found = {(r.info.experiment, r.info.run_id): r for r in root.runs()}
    assert set(found) == acc.runs
    assert ls_runs(url, *ls_extra) == acc.runs
    _read_back(found, acc)
    code, text = gc(url, *ls_extra)
    assert code == 0, text
    assert "removed          0" in text, text
    again = {(r.info.experiment, r.info.run_id): r for r in distlog.open_root(url, **options).runs()}
    assert set(again) == acc.runs
    _read_back(again, acc)


def _read_back(found: dict, acc: Accepted) -> None:
    for rid, want in acc.series.items():
        run = found[rid]
        assert run.info.status == "completed", (rid, run.info.status)
        assert sorted(run.metrics.keys()) == sorted(want), rid
        for key, values in want.items():
            s = run.metrics.read(key)
            np.testing.assert_array_equal(s["step"], np.arange(len(values), dtype=np.float64))
            np.testing.assert_array_equal(s["value"], np.asarray(values))
    for rid, want_h in acc.histograms.items():
        run = found[rid]
        assert sorted(run.metrics.histogram_keys()) == sorted(want_h), rid
        for key, rows in want_h.items():
            h = run.metrics.histogram(key)
            np.testing.assert_array_equal(h.step, np.arange(len(rows)))
            for i, values in enumerate(rows):
                counts, edges = np.histogram(values, bins=4)
                np.testing.assert_array_equal(h.counts[i], counts)
                np.testing.assert_array_equal(h.edges[i], edges)
    for rid, want in acc.files.items():
        for path, data in want.items():
            assert found[rid].files.read_bytes(path) == data, (rid, path)
