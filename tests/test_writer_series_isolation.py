"""One series that cannot be written never stops the others from committing (issue 10)."""

import numpy as np
import pytest

from distlog.layout import SCALARS_TABLE
from distlog.storage import open_storage
from distlog.writers.rowstore import RowTable, SeriesWriteError, read_commit, read_series


def _rows(start, n):
    r = np.zeros((n, 3))
    r[:, 0] = np.arange(start, start + n)
    r[:, 1] = r[:, 0] * 2
    return r


def test_a_failing_series_keeps_its_rows_and_the_others_commit(tmp_path):
    store = open_storage(str(tmp_path))
    t = RowTable(store, SCALARS_TABLE, ("step", "a", "b"), chunk_rows=8)
    bad = "x" * 400  # a path segment no local filesystem accepts (names.py refuses it up front)
    t.add("good", _rows(0, 5))
    t.add(bad, _rows(0, 5))
    with pytest.raises(SeriesWriteError, match="1 series of scalars could not be written") as e:
        t.write()
    assert list(e.value.failed) == [bad]
    assert read_commit(store, SCALARS_TABLE)["lengths"] == {"good": 5}
    # later commits go on for the good series; the bad one is retried and still refused
    t.add("good", _rows(5, 20))
    t.add("later", _rows(0, 3))
    with pytest.raises(SeriesWriteError):
        t.write()
    commit = read_commit(store, SCALARS_TABLE)
    assert commit["lengths"] == {"good": 25, "later": 3}
    np.testing.assert_array_equal(read_series(store, SCALARS_TABLE, "good", commit), _rows(0, 25))
    assert len(t.series[bad].buf) >= 5 and t.series[bad].committed == 0  # rows kept for a retry


def test_rows_whose_step_does_not_increase_are_refused(tmp_path, caplog):
    store = open_storage(str(tmp_path))
    t = RowTable(store, SCALARS_TABLE, ("step", "a", "b"), chunk_rows=8)
    t.add("k", _rows(0, 5))
    t.add("k", _rows(3, 4))  # steps 3..6: 3 and 4 repeat
    t.write()
    np.testing.assert_array_equal(read_series(store, SCALARS_TABLE, "k")[:, 0], [0, 1, 2, 3, 4, 5, 6])
    assert "refused 2 row(s) whose step did not increase" in caplog.text


def test_a_chunk_the_closing_pool_cannot_store_fails_its_series_alone(tmp_path):
    """At the final commit chunks are encoded and stored on a small pool; a chunk that cannot
    be stored there fails only its series, whose rows stay buffered and uncommitted."""
    store = open_storage(str(tmp_path))
    t = RowTable(store, SCALARS_TABLE, ("step", "a", "b"), chunk_rows=8)
    for key in ("good", "bad", "other"):
        t.add(key, _rows(0, 30))  # 4 chunks each: the pool encodes and stores them
    t.create_arrays()
    (tmp_path / "scalars.zarr" / "bad" / "c.1.0").mkdir(parents=True)  # no file can be put at that key
    with pytest.raises(SeriesWriteError) as e:
        t.write(final=True)
    assert list(e.value.failed) == ["bad"]
    commit = read_commit(store, SCALARS_TABLE)
    assert commit["lengths"] == {"good": 30, "other": 30, "bad": 0}
    for key in ("good", "other"):
        np.testing.assert_array_equal(read_series(store, SCALARS_TABLE, key, commit), _rows(0, 30))
    assert t.series["bad"].committed == 0 and t.series["bad"].n == 30
