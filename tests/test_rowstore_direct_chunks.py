"""The writer encodes whole chunks itself (transpose + little-endian bytes + Blosc, the
table's codecs) instead of zarr's ``setitem``: what it stores must read back through zarr,
byte-identical in value to what zarr would have written, for any width and Blosc setting."""

import json
import os

import numpy as np
import pytest
import zarr
from numcodecs import Blosc, blosc
from zarr.codecs import BloscCodec, TransposeCodec

from distlog.layout import HISTOGRAMS_TABLE, SCALARS_TABLE, is_chunk_key, table_zarr
from distlog.storage import open_storage
from distlog.writers.rowstore import RowTable, _codecs, chunk_encoder, read_series


def _rows(rng, start, n, width):
    r = rng.normal(size=(n, width))
    r[:, 0] = np.arange(start, start + n)
    r[rng.random(n) < 0.1, 2] = np.nan  # NaNs inside the data stay NaN
    return r


@pytest.mark.parametrize("width", [3, 11, 131])
def test_direct_chunks_read_back_through_zarr(tmp_path, width):
    rng = np.random.default_rng(width)
    store = open_storage(str(tmp_path))
    cols = [f"c{i}" for i in range(width)]
    t = RowTable(store, SCALARS_TABLE, cols, chunk_rows=16)
    expect = []
    total = 0
    for n in [7, 20, 1, 45, 0, 16]:  # partial tails, whole chunks, growth past capacity
        if n:
            rows = _rows(rng, total, n, width)
            t.add("a/b", rows)
            expect.append(rows)
            total += n
        t.write_complete()
        t.write()
        got = read_series(store, SCALARS_TABLE, "a/b")
        np.testing.assert_array_equal(got, np.concatenate(expect))
    assert t.series["a/b"].encode not in (None, False)  # the direct path was taken
    t.write(final=True)
    t.finalize()
    arr = zarr.open_group(str(tmp_path / table_zarr(SCALARS_TABLE)), mode="r")["a/b"]
    assert arr.shape == (total, width)  # exact length after close
    np.testing.assert_array_equal(arr[:], np.concatenate(expect))
    # every file of the table is a series' zarr.json or one of its chunks, each a file in the
    # series' folder (no c/<i>/ folders), and layout.is_chunk_key tells them apart
    files = [os.path.relpath(os.path.join(d, f), tmp_path) for d, _, fs in os.walk(tmp_path / table_zarr(SCALARS_TABLE))
             for f in fs]
    assert not [f for f in files if "/c/" in f]
    assert sorted(f for f in files if is_chunk_key(f)) == sorted(
        os.path.join(table_zarr(SCALARS_TABLE), "a", "b", f"c.{c}.0") for c in range(-(-total // 16)))
    assert all(f.endswith("zarr.json") for f in files if not is_chunk_key(f))
    # the same rows written by zarr itself decode to the same values, chunk by chunk
    ref = zarr.open_group(str(tmp_path / "ref.zarr"), mode="w").create_array(
        "r", shape=(total, width), chunks=(16, width), dtype="float64", fill_value=np.nan, **_codecs(),
        chunk_key_encoding={"name": "default", "separator": "."})
    ref[:] = np.concatenate(expect)
    for c in range(-(-total // 16)):
        mine = (tmp_path / table_zarr(SCALARS_TABLE) / "a" / "b" / f"c.{c}.0").read_bytes()  # one file per chunk
        theirs = (tmp_path / "ref.zarr" / "r" / f"c.{c}.0").read_bytes()
        a = np.frombuffer(Blosc().decode(mine), "<f8").reshape(width, 16)
        b = np.frombuffer(Blosc().decode(theirs), "<f8").reshape(width, 16)
        np.testing.assert_array_equal(a, b)


def test_other_codecs_fall_back_to_zarr_and_blosc_settings_follow_the_array(tmp_path):
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    plain = g.create_array("p", shape=(32, 3), chunks=(16, 3), dtype="float64")
    assert chunk_encoder(plain.metadata.to_dict()) is None  # no transpose/Blosc: zarr writes it
    f32 = g.create_array("f", shape=(32, 3), chunks=(16, 3), dtype="float32",
                         filters=[TransposeCodec(order=(1, 0))],
                         compressors=[BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")])
    assert chunk_encoder(f32.metadata.to_dict()) is None
    # an array an older version wrote (zstd level 3, chunk keys c/<i>/0): chunks get its settings
    old = g.create_array("o", shape=(32, 3), chunks=(16, 3), dtype="float64", fill_value=np.nan,
                         filters=[TransposeCodec(order=(1, 0))],
                         compressors=[BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")])
    enc = chunk_encoder(old.metadata.to_dict())
    block = np.arange(48, dtype=float).reshape(16, 3)
    data = enc(block)
    assert blosc.cbuffer_complib(data) == "Zstd"
    (tmp_path / "g.zarr" / "o" / "c" / "1").mkdir(parents=True)
    (tmp_path / "g.zarr" / "o" / "c" / "1" / "0").write_bytes(data)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "g.zarr" / "o"), mode="r")[16:], block)


def test_histogram_table_and_resumed_series_use_the_direct_path(tmp_path):
    rng = np.random.default_rng(1)
    store = open_storage(str(tmp_path))
    t = RowTable(store, HISTOGRAMS_TABLE, ["step", "time"], chunk_rows=8)
    first = _rows(rng, 0, 13, 2 + 9 + 8)
    t.add("h", first)
    t.write(final=True)
    t.finalize()
    # a new attempt loads the table and appends
    t2 = RowTable(store, HISTOGRAMS_TABLE, ["step", "time"], chunk_rows=8)
    t2.load()
    more = _rows(rng, 13, 11, 2 + 9 + 8)
    t2.add("h", more)
    t2.write(final=True)
    assert t2.series["h"].encode not in (None, False)
    np.testing.assert_array_equal(read_series(store, HISTOGRAMS_TABLE, "h"), np.concatenate([first, more]))


def test_a_run_in_the_earlier_layout_resumes_in_its_own_layout(tmp_path):
    """A table an earlier version wrote (zstd level 3, chunk keys ``c/<i>/0``) is resumed:
    its series keep their codec and chunk keys (each array's zarr.json says them), a new
    series takes today's (LZ4, ``c.<i>.0``), and every row reads back through zarr."""
    import json

    from distlog.layout import table_commit

    rng = np.random.default_rng(4)
    store = open_storage(str(tmp_path))
    width = 4
    old_rows = _rows(rng, 0, 21, width)
    group = zarr.open_group(str(tmp_path / table_zarr(SCALARS_TABLE)), mode="w")
    arr = group.create_array("old", shape=(21, width), chunks=(8, width), dtype="float64", fill_value=np.nan,
                             filters=[TransposeCodec(order=(1, 0))],
                             compressors=[BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
                             attributes={"columns": [f"c{i}" for i in range(width)]})
    arr[:] = old_rows
    (tmp_path / table_commit(SCALARS_TABLE)).write_text(json.dumps(
        {"format": 1, "table": SCALARS_TABLE, "lengths": {"old": 21}, "final": True}))
    t = RowTable(store, SCALARS_TABLE, [f"c{i}" for i in range(width)], chunk_rows=8)
    t.load()
    more, fresh = _rows(rng, 21, 30, width), _rows(rng, 0, 9, width)
    t.add("old", more)
    t.add("new", fresh)
    t.write(final=True)
    t.finalize()
    np.testing.assert_array_equal(read_series(store, SCALARS_TABLE, "old"), np.concatenate([old_rows, more]))
    np.testing.assert_array_equal(read_series(store, SCALARS_TABLE, "new"), fresh)
    base = tmp_path / table_zarr(SCALARS_TABLE)
    assert sorted(p.name for p in (base / "old" / "c").iterdir()) == ["0", "1", "2", "3", "4", "5", "6"]
    assert not (base / "new" / "c").exists() and (base / "new" / "c.1.0").exists()
    for key, lib in (("old", "Zstd"), ("new", "LZ4")):
        doc = json.loads((base / key / "zarr.json").read_text())
        chunk = next(p for p in (base / key).rglob("*") if p.is_file() and p.name != "zarr.json")
        assert blosc.cbuffer_complib(chunk.read_bytes()) == lib, (key, doc["codecs"])
    g = zarr.open_consolidated(str(base), mode="r")  # the consolidated metadata holds both layouts
    np.testing.assert_array_equal(g["old"][:], np.concatenate([old_rows, more]))
    np.testing.assert_array_equal(g["new"][:], fresh)


def test_an_array_the_writer_created_itself_opens_in_zarr_when_zarr_must_act(tmp_path):
    """On local disk a new series is a ``_Created`` array (no zarr object); an operation only
    zarr does (a resize that deletes chunks past the new end) opens it from its document."""
    from distlog.writers.rowstore import _Created

    rng = np.random.default_rng(7)
    store = open_storage(str(tmp_path))
    t = RowTable(store, SCALARS_TABLE, ["step", "a", "b"], chunk_rows=8)
    rows = _rows(rng, 0, 20, 3)
    t.add("s", rows)
    t.write()
    s = t.series["s"]
    assert type(s.array) is _Created and s.capacity == 24
    assert t._run_ops([t._zarr_resize(s, 9)]) == [None]  # chunk 2 (rows 16-19) is deleted
    assert type(s.array) is not _Created
    arr = zarr.open_array(str(tmp_path / table_zarr(SCALARS_TABLE) / "s"), mode="r")
    assert arr.shape == (9, 3) and not (tmp_path / table_zarr(SCALARS_TABLE) / "s" / "c.2.0").exists()
    np.testing.assert_array_equal(arr[:], rows[:9])


def test_stored_rows_read_without_zarr_are_what_zarr_reads(tmp_path):
    """A resumed attempt reads an earlier attempt's rows itself (``_StoredRows``): any row
    range and column, across chunks, a missing chunk reading as NaN, as zarr reads them."""
    from distlog.writers.rowstore import _Created, _StoredRows

    rng = np.random.default_rng(3)
    store = open_storage(str(tmp_path))
    t = RowTable(store, SCALARS_TABLE, ["step", "a", "b", "c"], chunk_rows=8)
    t.add("k", _rows(rng, 0, 29, 4))
    t.write(final=True)
    t.finalize()
    base = tmp_path / table_zarr(SCALARS_TABLE) / "k"
    (base / "c.2.0").unlink()  # rows 16-23: a chunk never written reads as the fill value
    arr = zarr.open_array(str(base), mode="r")
    mine = _StoredRows(store, f"{table_zarr(SCALARS_TABLE)}/k", json.loads((base / "zarr.json").read_text()))
    for sel in [slice(None), slice(0, 29), slice(3, 5), slice(7, 9), slice(5, 27), slice(20, None), slice(29, 40)]:
        np.testing.assert_array_equal(mine[sel], arr[sel])
        np.testing.assert_array_equal(mine[sel, 0], arr[sel, 0])
    assert np.isnan(mine[16:24]).all()
    t2 = RowTable(store, SCALARS_TABLE, ["step", "a", "b", "c"], chunk_rows=8)
    t2.load()
    assert type(t2.series["k"].array) is _Created and t2._group is None  # zarr never opened


def test_an_earlier_layout_cut_back_by_a_resume_loses_its_chunks_past_the_end(tmp_path):
    """A resume from a checkpoint cuts a series an earlier version stored (zstd, ``c/<i>/0``)
    back: at close its chunks past the new end are deleted under that layout's keys, the
    array takes the exact length, and the rows read back through zarr."""
    import json

    from distlog.layout import table_commit

    rng = np.random.default_rng(5)
    store = open_storage(str(tmp_path))
    old_rows = _rows(rng, 0, 30, 3)
    group = zarr.open_group(str(tmp_path / table_zarr(SCALARS_TABLE)), mode="w")
    group.create_array("old", shape=(30, 3), chunks=(8, 3), dtype="float64", fill_value=np.nan,
                       filters=[TransposeCodec(order=(1, 0))],
                       compressors=[BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
                       attributes={"columns": ["c0", "c1", "c2"]})[:] = old_rows
    (tmp_path / table_commit(SCALARS_TABLE)).write_text(json.dumps(
        {"format": 1, "table": SCALARS_TABLE, "lengths": {"old": 30}, "final": True}))
    t = RowTable(store, SCALARS_TABLE, ["c0", "c1", "c2"], chunk_rows=8)
    t.load(truncate_after_step=9)  # rows of steps 0-9 stay: chunk 0 and part of chunk 1
    t.write(final=True)
    t.finalize()
    base = tmp_path / table_zarr(SCALARS_TABLE) / "old"
    chunks = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and p.name != "zarr.json")
    assert chunks == ["c/0/0", "c/1/0"]  # chunks 2 and 3 deleted
    np.testing.assert_array_equal(read_series(store, SCALARS_TABLE, "old"), old_rows[:10])
    assert zarr.open_array(str(base), mode="r").shape == (10, 3)


@pytest.mark.timeout(60)
def test_a_series_cut_to_no_rows_grows_again(tmp_path):
    """A resume cuts a series back to 0 rows and closes (its array: shape (0, w)); a later
    attempt logging it again grows the array from a chunk's capacity (doubling 0 never ended)."""
    rng = np.random.default_rng(9)
    store = open_storage(str(tmp_path))
    t = RowTable(store, SCALARS_TABLE, ["step", "a", "b"], chunk_rows=8)
    t.add("k", _rows(rng, 5, 10, 3))
    t.write(final=True)
    t.finalize()
    t = RowTable(store, SCALARS_TABLE, ["step", "a", "b"], chunk_rows=8)
    t.load(truncate_after_step=2)  # every stored step is past 2
    t.write(final=True)
    t.finalize()
    assert zarr.open_array(str(tmp_path / table_zarr(SCALARS_TABLE) / "k"), mode="r").shape == (0, 3)
    t = RowTable(store, SCALARS_TABLE, ["step", "a", "b"], chunk_rows=8)
    t.load()
    again = _rows(rng, 0, 20, 3)
    t.add("k", again)
    t.write()
    t.write(final=True)
    t.finalize()
    np.testing.assert_array_equal(read_series(store, SCALARS_TABLE, "k"), again)
