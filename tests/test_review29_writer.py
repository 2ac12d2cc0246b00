"""Review of the writer's pending array documents (``doc_pending``) and packed logged series:
what the store holds after real RowTable / BackgroundWriter runs on local disk, compared with
NumPy oracles."""

import json

import numpy as np
import pytest

from distlog.storage import open_storage
from distlog.writers.rowstore import RowTable, SeriesWriteError, read_commit, read_series


def _rows(start, n, width=3):
    r = np.zeros((n, width))
    r[:, 0] = np.arange(start, start + n)
    r[:, 1] = np.arange(start, start + n) * 0.5
    r[:, 2] = -np.arange(start, start + n)
    return r


def test_a_series_and_a_series_under_it_created_together_fail_the_nested_one(tmp_path):
    """``a`` and ``a/b`` created in one batch (one commit's or one ``create_arrays``'):
    ``a``'s document is only pending when ``a/b`` is created, so the namespace check must
    still see ``a`` as a series. Before the fix ``a/b`` was created under a group ``a`` whose
    ``zarr.json`` the commit then replaced with ``a``'s array document: both were committed
    and the finalized group's consolidated metadata named an array under an array (zarr could
    no longer list the table: ``KeyError('a/b')``)."""
    import zarr

    store = open_storage(str(tmp_path))
    t = RowTable(store, "scalars", ("step", "a", "b"), chunk_rows=4)
    t.add("a", _rows(0, 5))
    t.add("a/b", _rows(0, 5))
    t.add("ok", _rows(0, 3))
    with pytest.raises(SeriesWriteError) as err:
        t.write(final=True)
    assert set(err.value.failed) == {"a/b"}
    assert "'a' is already a series" in str(err.value.failed["a/b"])
    assert read_commit(store, "scalars")["lengths"] == {"a": 5, "ok": 3}
    assert json.loads(store.read_bytes("scalars.zarr/a/zarr.json"))["node_type"] == "array"
    t.finalize()
    np.testing.assert_array_equal(read_series(store, "scalars", "a"), _rows(0, 5))
    np.testing.assert_array_equal(read_series(store, "scalars", "ok"), _rows(0, 3))
    assert sorted(zarr.open_group(str(tmp_path / "scalars.zarr"), mode="r").keys()) == ["a", "ok"]


def test_the_same_clash_through_create_arrays(tmp_path):
    """As above, with the arrays created between commits (the writer's ``create_arrays``)."""
    store = open_storage(str(tmp_path))
    t = RowTable(store, "scalars", ("step", "a", "b"), chunk_rows=4)
    t.add("x", _rows(0, 2))
    t.add("x/y/z", _rows(0, 2))
    t.create_arrays()
    assert t.series["x/y/z"].array is None  # refused ('x' is a series), retried and reported
    with pytest.raises(SeriesWriteError) as err:
        t.write(final=True)
    assert set(err.value.failed) == {"x/y/z"}
    assert read_commit(store, "scalars")["lengths"] == {"x": 2}
    np.testing.assert_array_equal(read_series(store, "scalars", "x"), _rows(0, 2))


def test_finalizing_a_table_whose_series_never_got_an_array(tmp_path):
    """A table that saw a series but stored no row of it (its only rows empty) has no array
    and no group document: finalize has nothing to consolidate and must not fail the close."""
    store = open_storage(str(tmp_path))
    t = RowTable(store, "scalars", ("step", "a", "b"), chunk_rows=4)
    t.add("x", np.empty((0, 3)))
    t.write(final=True)
    t.finalize()
    assert read_commit(store, "scalars")["lengths"] == {}
