"""A real 4-rank gloo run: the merged log is in global time order, a rank filter returns
exactly that rank's lines, every other filter equals a plain-Python oracle over the files,
and the Zarr logs table answers the same as the text. Per-rank metric series read back."""

from __future__ import annotations

import re

import numpy as np
import pytest

from support.ranks import run_ranks
from distlog.layout import rank_log_path
from distlog.logs import iter_records
from distlog.query import LogFilter, RankNotFound, open_run
from distlog.writers.logtable import read_logs_table, write_logs_table

pytestmark = pytest.mark.dist

WORLD, N = 4, 40
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def _worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.experiment("merge"), exp.run("four"):
        for i in range(N):
            exp.log(LEVELS[(i + rank) % 4], f"rank {rank} item {i} loss={(rank + i) % 7}", step=i)
            exp.metrics.log(step=i, own=float(100 * rank + i))
            exp.metrics.collect(step=i, loss=float(rank + i))
            if i % 10 == 9:
                exp.metrics.flush()
        return exp.run_url


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("merge4")
    url = run_ranks(_worker, WORLD, tmp, str(tmp / "root"), timeout=150)[0]
    return open_run(url)


def _file_records(run, rank):
    text = run.storage.read_text(rank_log_path(rank, 0))
    return list(iter_records(text))


def _oracle(run, keep=lambda r: True):
    recs = [r for rank in range(WORLD) for r in _file_records(run, rank) if keep(r)]
    return sorted(recs, key=lambda r: (r.time, r.rank, r.attempt))  # stable: file order kept


@pytest.mark.timeout(240)
def test_merged_log_is_in_global_time_order_with_host_and_rank(run):
    merged = list(run.logs.query(source="text"))
    assert merged == _oracle(run)
    assert len(merged) >= WORLD * N
    times = [r.time for r in merged]
    assert times == sorted(times)
    assert {r.rank for r in merged} == set(range(WORLD))
    assert all(r.host for r in merged)
    assert run.logs.ranks() == [0, 1, 2, 3]


@pytest.mark.timeout(240)
def test_rank_filter_returns_exactly_that_ranks_lines(run):
    for rank in range(WORLD):
        assert list(run.logs.query(rank=rank, source="text")) == _file_records(run, rank)


@pytest.mark.timeout(240)
def test_filters_equal_an_oracle(run):
    all_recs = _oracle(run)
    t_lo, t_hi = all_recs[len(all_recs) // 4].time, all_recs[3 * len(all_recs) // 4].time
    pat = re.compile(r"loss=[0-2]$")
    cases = [
        ({"level": "WARNING"}, lambda r: r.levelno >= 30),
        ({"grep": r"loss=[0-2]$"}, lambda r: pat.search(r.message)),
        ({"steps": "5:12"}, lambda r: r.step is not None and 5 <= r.step <= 12),
        ({"since": t_lo, "until": t_hi}, lambda r: t_lo <= r.time <= t_hi),
        ({"rank": [1, 3], "level": "INFO", "steps": "30:"},
         lambda r: r.rank in (1, 3) and r.levelno >= 20 and r.step is not None and r.step >= 30),
        ({"host": all_recs[0].host, "attempt": 0}, lambda r: True),
    ]
    for kw, keep in cases:
        assert list(run.logs.query(source="text", **kw)) == _oracle(run, keep), kw
        for n in (1, 7, 10_000):
            assert list(run.logs.query(source="text", tail=n, **kw)) == _oracle(run, keep)[-n:], (kw, n)


@pytest.mark.timeout(240)
def test_logs_table_answers_like_the_text_and_falls_back_when_stale(run):
    write_logs_table(run.storage)
    assert read_logs_table(run.storage) is not None
    for kw in ({}, {"rank": 2}, {"level": "ERROR", "grep": "item 1"}, {"steps": ":3", "tail": 5},
               {"tail": 3}, {"grep": "loss=6", "tail": 4}):
        table = run.logs.query(source="table", **kw)
        assert table.source == "table"
        assert list(table) == list(run.logs.query(source="text", **kw)), kw
        assert table.lines == run.logs.query(source="text", **kw).lines
    assert run.logs.query().source == "table"
    frame = run.logs.to_frame(rank=1)
    assert list(frame["rank"].unique()) == [1] and str(frame["step"].dtype) == "Int64"
    # a line written after the table (a resumed run, a late rank): the text answers again
    path = run.storage.local_path(rank_log_path(3, 0))
    with open(path, "a") as f:
        f.write("2099-01-01T00:00:00.000000+00:00 INFO late n0 r3 l3 a0 s- written later\n")
    assert read_logs_table(run.storage) is None
    latest = run.logs.query(tail=1)
    assert latest.source == "text" and latest[0].message == "written later"


@pytest.mark.timeout(240)
def test_unknown_rank_says_which_ranks_exist(run):
    with pytest.raises(RankNotFound, match="ranks with logs: 0, 1, 2, 3"):
        run.logs.query(rank=9)


@pytest.mark.timeout(240)
def test_per_rank_and_reduced_series(run):
    assert run.metrics.ranks() == [0, 1, 2, 3]
    for rank in range(1, WORLD):
        own = run.metrics.read("own", rank=rank)
        assert own.step.tolist() == list(range(N))
        np.testing.assert_array_equal(own["value"], 100 * rank + np.arange(N))
    assert run.metrics.read("own")["value"].tolist() == list(range(N))  # rank 0's own values
    loss = run.metrics["loss"]
    assert loss["step"].tolist() == [9, 19, 29, 39]
    for step, mean, lo, hi, count in zip(loss["step"], loss["mean"], loss["min"], loss["max"],
                                         loss["count"]):
        vals = [r + i for r in range(WORLD) for i in range(step - 9, step + 1)]
        assert mean == pytest.approx(np.mean(vals)) and (lo, hi, count) == (min(vals), max(vals), 40)
    with pytest.raises(RankNotFound, match="ranks with series: 0, 1, 2, 3"):
        run.metrics.read("own", rank=7)


def test_log_filter_parses_user_values():
    f = LogFilter.make(rank="0,2", level="warn", steps="10:", since="2026-01-02T03:04:05",
                       attempt=[1])
    assert f.ranks == {0, 2} and f.level == 30 and (f.step_min, f.step_max) == (10, None)
    assert f.since == 1767323045.0 and f.attempts == {1}
    assert LogFilter.make(since="10m").since == pytest.approx(__import__("time").time() - 600, abs=5)
