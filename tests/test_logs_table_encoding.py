"""The logs table's objects are written without zarr (``logtable._encode_table``): they must be
what zarr itself writes for the same arrays, and read back through zarr as the same data."""

import json

import numpy as np
import pytest
import zarr
from numcodecs import Blosc

from distlog.writers.logtable import BYTE_CHUNK, CHUNK, RECORD_COLUMNS, _encode_table


def _zarr_objects(records, message, fields, hosts):
    """The same generation built by zarr (what distlog wrote before, and any reader expects)."""
    from zarr.codecs import BloscCodec, TransposeCodec

    objects = {}
    n = len(records)
    group = zarr.open_group(store=zarr.storage.MemoryStore(objects), mode="w", attributes={"hosts": hosts, "rows": n})
    blosc = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
    keys = {"name": "default", "separator": "."}  # one file per chunk (runs before: "/", read alike)
    arr = group.create_array("records", shape=records.shape, dtype="float64", fill_value=np.nan,
                             chunks=(max(1, min(CHUNK, n)), len(RECORD_COLUMNS)),
                             filters=[TransposeCodec(order=(1, 0))], compressors=[blosc], chunk_key_encoding=keys,
                             attributes={"columns": list(RECORD_COLUMNS)})
    if n:
        arr[:] = records
    for key, blob in (("message", message), ("fields", fields)):
        arr = group.create_array(key, shape=blob.shape, dtype="uint8", fill_value=0,
                                 chunks=(max(1, min(BYTE_CHUNK, len(blob))),), compressors=[blosc],
                                 chunk_key_encoding=keys)
        if len(blob):
            arr[:] = blob
    return {k: v.to_bytes() for k, v in objects.items()}


@pytest.mark.parametrize("rows,message_bytes", [(0, 0), (5, 12), (CHUNK + 7, BYTE_CHUNK + 3)])
def test_logs_table_objects_are_what_zarr_writes(rows, message_bytes):
    rng = np.random.default_rng(rows)
    records = rng.normal(size=(rows, len(RECORD_COLUMNS)))
    records[::7, 5] = np.nan  # records without a step
    message = rng.integers(32, 127, message_bytes).astype(np.uint8)
    fields = np.frombuffer(('{"k": "é"}\n' * (rows % 5)).encode(), dtype=np.uint8)
    mine = _encode_table(records, message, fields, ["node-a", "node-b"])
    theirs = _zarr_objects(records, message, fields, ["node-a", "node-b"])
    assert sorted(mine) == sorted(theirs)  # the same documents and chunk keys
    for key, data in theirs.items():
        if key.endswith("zarr.json"):
            assert json.loads(mine[key]) == json.loads(data), key
        else:  # Blosc's multi-threaded block order may differ: the same header and content
            assert mine[key][:12] == data[:12], key
            assert Blosc().decode(mine[key]) == Blosc().decode(data), key
    # read back through zarr: the arrays as given
    group = zarr.open_group(store=zarr.storage.MemoryStore({k: zarr.core.buffer.cpu.Buffer.from_bytes(v)
                                                             for k, v in mine.items()}), mode="r")
    assert group.attrs["rows"] == rows and group.attrs["hosts"] == ["node-a", "node-b"]
    np.testing.assert_array_equal(group["records"][:], records)
    np.testing.assert_array_equal(group["message"][:], message)
    np.testing.assert_array_equal(group["fields"][:], fields)
