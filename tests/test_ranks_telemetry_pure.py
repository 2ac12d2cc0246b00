"""Telemetry without processes: slots a rank packs, rank 0's hand-off, and the reader's
derived fields (step time, wait moved back to its flush)."""

import numpy as np

from distlog import reduce as R
from distlog.query.telemetry import Matrix, _shift_back, _steps
from distlog.telemetry import FIELDS, Telemetry


def test_each_rank_fills_only_its_row_so_the_sum_is_a_gather():
    world = 3
    tels = [Telemetry(r, world) for r in range(world)]
    blocks = [t.enter().copy() for t in tels]
    summed = np.sum(blocks, axis=0).reshape(world, len(FIELDS))
    for r, b in enumerate(blocks):
        mine = b.reshape(world, len(FIELDS))
        assert not np.delete(mine, r, axis=0).any()  # zeros outside its own row
        np.testing.assert_array_equal(summed[r], mine[r])
    assert (summed[:, 0] >= 0).all() and (summed[:, 3] > 0).all()  # interval, rss
    # the slots ride at the end of the SUM bucket and come back out unchanged
    keys = ("a", "b")
    s, _ = R.pack(keys, R.LocalStats.identity(keys), [0.0] * R.HEADER_LEN, R.FlushIdentity(0), None, blocks[1])
    np.testing.assert_array_equal(R.extra_slots(keys, s), blocks[1])


def test_rank0_hands_rows_off_when_due_and_at_close_and_skips_repeated_steps():
    t = Telemetry(0, 2, handoff_interval=1000.0)
    slots = np.arange(2 * len(FIELDS), dtype=float)
    slots.reshape(2, len(FIELDS))[:, 4:] = np.nan  # no GPU: its series are not written
    first = t.add(0.0, 0, slots, now=10.0)  # the first flush goes out at once
    assert set(first) == set(FIELDS[:4]) and first["interval"].shape == (1, 5)
    assert t.add(1.0, 1, slots + 1, now=11.0) == {}  # kept until due
    assert t.add(1.0, 2, slots + 2, now=12.0) == {}  # same step again: left out
    out = t.add(2.0, 3, slots + 3, now=13.0, force=True)  # the closing flush
    rows = out["rss"]
    np.testing.assert_array_equal(rows[:, :3], [[1.0, 11.0, 1], [2.0, 13.0, 3]])
    np.testing.assert_array_equal(rows[:, 3:], [[3 + 1, len(FIELDS) + 3 + 1], [3 + 3, len(FIELDS) + 3 + 3]])
    gpu = slots.copy()
    gpu[4] = 1e9  # rank 0 reports GPU memory: the GPU series start here
    assert set(t.add(3.0, 4, gpu, now=14.0, force=True)) == set(FIELDS)


def test_step_time_and_wait_alignment():
    step = np.array([0.0, 10, 20, 30, 0, 5])
    flush = np.array([0.0, 1, 2, 3, 0, 1])  # a second attempt starts at flush 0
    vals = np.arange(12, dtype=float).reshape(6, 2)
    m = Matrix("interval", step, step, flush, vals)
    np.testing.assert_array_equal(_steps(m), [np.nan, 10, 10, 10, np.nan, 5])
    shifted = _shift_back(m)
    np.testing.assert_array_equal(shifted[:3], vals[1:4])
    assert np.isnan(shifted[3]).all() and np.isnan(shifted[5]).all()  # no next flush in its attempt
    np.testing.assert_array_equal(shifted[4], vals[5])


def test_resuming_a_run_stored_before_the_rank_columns_keeps_its_columns(tmp_path):
    import distlog
    from distlog.metrics import SCALAR_COLUMNS
    from distlog.storage import open_storage
    from distlog.layout import SCALARS_TABLE
    from distlog.writers.rowstore import RowTable, read_series

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("old"):
        pass
    store = open_storage(f"{root}/default/old")
    # its series as the format before argmin_rank/argmax_rank wrote them (9 columns)
    old_cols = list(SCALAR_COLUMNS[:9])
    t = RowTable(store, SCALARS_TABLE, old_cols)
    t.add("loss", np.array([[0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]]))
    t.write(final=True)
    t.finalize()
    with exp.run("old"):  # a new attempt with the current format appends to it
        exp.metrics.collect(step=1, loss=2.0)
        exp.metrics.flush()
    rows = read_series(store, SCALARS_TABLE, "loss")
    assert rows.shape == (2, 9) and rows[:, 0].tolist() == [0.0, 1.0] and rows[1, 2] == 2.0
