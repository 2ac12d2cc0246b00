"""A flush window handed on unreduced (one process: every steady flush) may be reduced by two
threads at once: the writer, for the stored rows, and the training thread, when the script
reads flush()'s result or asks for statistics. Reducing drops the window's values; a second
reducer that had picked the same window before the first finished saw none and replaced
its statistics with empty ones: a silently lost row, or a failed writer (seen in 1 of 5
runs of 3,000 flushes before ``reduce_windows`` reduced one batch at a time).

Run in a fresh interpreter with a tiny GIL switch interval, so the threads interleave often."""

import subprocess
import sys

import pytest

SCRIPT = r"""
import sys, tempfile
import numpy as np
sys.setswitchinterval(1e-6)
import distlog

N = 36_000
root = tempfile.mkdtemp()
exp = distlog.get_logger(root)
exp.start_run("r")
m = exp.metrics
for f in range(N):
    for j in range(3):
        m.collect({"a": float(3 * f + j), "b": 1.0}, step=3 * f + j)
    red = m.flush()
    if f % 2:  # the result, read here: reduced on this thread unless the writer was first
        assert red.count[0] == 3 and red.mean[0] == 3 * f + 1.0, (f, red)
    if f % 5 == 0:
        m.get_stats("a", window=10)
exp.close()
run = distlog.open_run(f"{root}/default/r")
df = run.metrics.read("a").to_frame()
assert len(df) == N, f"{N - len(df)} rows lost"
np.testing.assert_array_equal(df["mean"].to_numpy(), 3.0 * np.arange(N) + 1.0)
np.testing.assert_array_equal(df["count"].to_numpy(), np.full(N, 3.0))
print("ok")
"""


@pytest.mark.timeout(240)
def test_a_window_read_while_the_writer_reduces_it_keeps_its_row():
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=220)
    assert p.returncode == 0 and p.stdout.strip().endswith("ok"), p.stderr[-3000:]
