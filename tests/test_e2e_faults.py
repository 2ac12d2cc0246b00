"""Faults: what a flaky store does to a run must never show in what the run stored.

* The background Zarr writer, with a share of its store writes failing, keeps every row and
  writes it at a later commit: no row lost, none duplicated, no fill values.
* A failed commit leaves no write of its own in flight to land over a later commit's chunk.
* A 2-rank gloo run to S3 through ``FaultProxy`` (a share of requests answered 503, reset, or
  applied upstream with the answer dropped) stores exactly what a fault-free run stores.
"""

from __future__ import annotations

import asyncio
import errno
import random
import threading
import time
import uuid
from typing import Any

import numpy as np
import pytest

pytest_plugins = ["servers"]


# ---- a zarr store that fails a share of writes ----------------------------------------------
def _flaky_backend(rate: float, seed: int, slow: dict[str, float] | None = None,
                   fail_keys: tuple[str, ...] = ()) -> Any:
    """A memory backend whose zarr stores fail ``rate`` of their writes and deletes
    (``OSError(EBUSY)``, as s3fs reports a 503), delay writes of keys containing a ``slow``
    substring by its seconds (the first such write only), and fail every write of keys containing a ``fail_keys`` item
    while ``state["fail_keys"]`` is on. ``state["rate"]`` can be changed on the fly."""
    from zarr.storage import WrapperStore

    from distlog.storage.memory import MemoryBackend

    state = {"rate": rate, "rng": random.Random(seed), "lock": threading.Lock(), "failed": 0,
             "writes": 0, "fail_keys": True}

    def maybe_fail(key: str) -> None:
        with state["lock"]:
            state["writes"] += 1
            hit = state["rng"].random() < state["rate"] or (
                state["fail_keys"] and any(f in key for f in fail_keys))
            if hit:
                state["failed"] += 1
        if hit:
            raise OSError(errno.EBUSY, f"injected failure writing {key}")

    class Flaky(WrapperStore):
        def _with_store(self, store: Any) -> "Flaky":
            return Flaky(store)

        async def set(self, key: str, value: Any) -> None:
            for part in list(slow or {}):
                if part in key:  # only the first write of such a key is slow
                    await asyncio.sleep(slow.pop(part))
            maybe_fail(key)
            await self._store.set(key, value)

        async def delete(self, key: str) -> None:
            maybe_fail(key)
            await self._store.delete(key)

        async def delete_dir(self, prefix: str) -> None:
            maybe_fail(prefix)
            await self._store.delete_dir(prefix)

    class FlakyMemory(MemoryBackend):
        def zarr_store(self, path: str, read_only: bool = False) -> Any:
            return Flaky(super().zarr_store(path, read_only))

    return FlakyMemory(f"memory://flaky-{uuid.uuid4().hex[:12]}/run"), state


def _row(step: int, key_index: int) -> np.ndarray:
    return np.array([step, step * 0.5 + key_index, -step - 1000.0 * key_index])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [4, 5, 6])
def test_writer_keeps_every_row_through_failing_zarr_writes(seed: int) -> None:
    """30% of the store writes fail (chunk writes, resizes, array creation, commit records
    included): commits fail and raise ``WriterError`` at the next flush, yet once the store
    recovers every row is there exactly once, in order, and nothing past the rows is NaN."""
    from distlog.errors import WriterError
    from distlog.writers.rowstore import BackgroundWriter, RowTable, read_commit, read_series

    backend, state = _flaky_backend(0.3, seed=seed)
    keys = [f"k{i}" for i in range(5)] + ["deep/er/k"]
    table = RowTable(backend, "scalars", ("step", "a", "b"), chunk_rows=4)  # many chunks, resizes
    writer = BackgroundWriter({"scalars": table}, commit_interval=3600)
    failures = 0
    steps = 150
    for step in range(steps):
        present = [k for i, k in enumerate(keys) if i < 3 or step % (i + 1) == 0]
        writer.put_many("scalars", present, np.stack([_row(step, keys.index(k)) for k in present]))
        if step % 3 == 2:
            try:
                writer.flush(wait=True, timeout=30)
            except WriterError:
                failures += 1
    state["rate"] = 0.0  # the store recovers: the next commit writes everything buffered
    writer.flush(wait=True, timeout=30)
    writer.close(finalize=True, timeout=60)
    assert failures >= 10 and state["failed"] >= 20, (failures, state["failed"])
    commit = read_commit(backend, "scalars")
    for i, key in enumerate(keys):
        want = np.stack([_row(s, i) for s in range(steps) if i < 3 or s % (i + 1) == 0])
        assert commit["lengths"][key] == len(want)
        got = read_series(backend, "scalars", key, commit)
        np.testing.assert_array_equal(got, want, err_msg=key)


@pytest.mark.timeout(60)
def test_failed_commit_leaves_no_write_in_flight() -> None:
    """A commit fails on one series while another series' chunk write is still on its way.
    The next commit must not start before that write has landed: otherwise the late, older
    chunk overwrites the newer one and the committed length covers fill values."""
    from distlog.errors import WriterError
    from distlog.writers.rowstore import BackgroundWriter, RowTable, read_series

    backend, state = _flaky_backend(0.0, seed=0, slow={"slow/c/": 0.5}, fail_keys=("bad/c/",))
    table = RowTable(backend, "scalars", ("step", "a", "b"), chunk_rows=8)
    writer = BackgroundWriter({"scalars": table}, commit_interval=3600)
    writer.put_many("scalars", ["bad", "slow"], np.stack([_row(0, 0), _row(0, 1)]))
    with pytest.raises(WriterError):
        writer.flush(wait=True, timeout=30)  # "bad" fails at once, "slow" is still writing
    state["fail_keys"] = False
    for step in range(1, 4):
        writer.put_many("scalars", ["bad", "slow"], np.stack([_row(step, 0), _row(step, 1)]))
    writer.flush(wait=True, timeout=30)
    writer.close(finalize=True, timeout=30)
    time.sleep(0.8)  # a write left over from the failed commit would have landed by now
    for i, key in enumerate(["bad", "slow"]):
        np.testing.assert_array_equal(read_series(backend, "scalars", key),
                                      np.stack([_row(s, i) for s in range(4)]), err_msg=key)
