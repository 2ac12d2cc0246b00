"""A seeded kill -9 campaign: random rank subsets killed at random moments, then resumed with
and without a checkpoint. Every stored series keeps strictly increasing steps; what a killed
attempt committed is a prefix of the oracle, and the resumed run equals the oracle (issue 10)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from distlog.layout import RUN_FILE, SCALARS_TABLE, rank_dir
from distlog.storage import open_storage
from distlog.writers.rowstore import read_commit, read_series

from support.killable_train import own, value  # noqa: E402

pytestmark = pytest.mark.dist

STEPS = 60
SCRIPT = os.path.join(os.path.dirname(__file__), "support", "killable_train.py")


def _oracle_loss(steps):
    v = np.array([[value(r, s) for r in range(2)] for s in steps])
    return v.mean(axis=1), v.min(axis=1), v.max(axis=1)


def _check(root, complete):
    """Stored series against the oracle; with ``complete`` every step must be there."""
    store = open_storage(os.path.join(root, "kill", "k"))
    commit = read_commit(store, SCALARS_TABLE)
    if not commit.get("lengths", {}).get("loss"):
        assert not complete
        return 0
    rows = read_series(store, SCALARS_TABLE, "loss", commit)
    steps = rows[:, 0].astype(int)
    assert (np.diff(steps) > 0).all(), steps
    np.testing.assert_array_equal(steps, np.arange(len(steps)))  # a prefix: no gap, no repeat
    mean, lo, hi = _oracle_loss(steps)
    np.testing.assert_allclose(rows[:, 3], mean, rtol=1e-12)
    np.testing.assert_allclose(rows[:, 4], lo, rtol=1e-12)
    np.testing.assert_allclose(rows[:, 5], hi, rtol=1e-12)
    np.testing.assert_array_equal(rows[:, 7], 2)  # count: one value per rank
    for rank in (0, 1):
        st = store.child(rank_dir(rank)) if rank else store
        c = read_commit(st, SCALARS_TABLE)
        if c.get("lengths", {}).get("own"):
            o = read_series(st, SCALARS_TABLE, "own", c)
            s = o[:, 0].astype(int)
            assert (np.diff(s) > 0).all(), (rank, s)
            np.testing.assert_array_equal(o[:, 2], [own(rank, x) for x in s])
            if complete:
                np.testing.assert_array_equal(s, np.arange(STEPS))
    if complete:
        assert len(steps) == STEPS
    return len(steps)


def _run(root, mode, workdir, env):
    return subprocess.Popen([sys.executable, SCRIPT, root, mode, str(STEPS), str(workdir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.timeout(300)
def test_kill9_then_resume(tmp_path, seed):
    rng = np.random.default_rng(seed)
    mode = ["ckpt", "restart"][seed % 2]
    root = str(tmp_path / "root")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for attempt in range(2):  # two kills, then a run to the end
        for f in ("progress", "pid-0", "pid-1"):
            if (tmp_path / f).exists():
                (tmp_path / f).unlink()
        p = _run(root, mode, tmp_path, env)
        target = int(rng.integers(5, 40))
        deadline = time.time() + 150
        while time.time() < deadline and p.poll() is None:
            prog = tmp_path / "progress"
            try:
                if prog.exists() and int(prog.read_text() or -1) >= target:
                    break
            except ValueError:
                pass
            time.sleep(0.05)
        assert p.poll() is None, f"the script ended early: {p.stderr.read().decode()[-2000:]}"
        victims = [r for r in range(2) if rng.random() < 0.5] or [int(rng.integers(2))]
        time.sleep(float(rng.uniform(0, 0.3)))
        assert p.poll() is None, "the attempt ended before it could be killed"
        for r in victims:
            os.kill(int((tmp_path / f"pid-{r}").read_text()), signal.SIGKILL)
        try:
            p.wait(90)  # a survivor fails its next flush within flush_timeout
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail("a surviving rank did not end after its peer was killed")
        _check(root, complete=False)
    p = _run(root, mode, tmp_path, env)
    try:
        _, err = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail("the resumed run did not finish")
    assert p.returncode == 0, err.decode()[-12000:]
    assert _check(root, complete=True) == STEPS
    import json

    meta = json.load(open(os.path.join(root, "kill", "k", RUN_FILE)))
    assert meta["status"] == "completed" and len(meta["attempts"]) == 3
    assert all(a["status"] in ("interrupted", "failed") for a in meta["attempts"][:2]), [(a["attempt"], a["status"], a.get("ended")) for a in meta["attempts"]]
