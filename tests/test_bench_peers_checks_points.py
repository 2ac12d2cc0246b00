"""The peer benchmark (``scripts/bench/bench_peers.py``) is where the README's training-path
figures come from: each of distlog's patterns writes W1 in its own process and W2 reads every
point back in another. This runs it small and requires every point checked, for every
pattern (keyword calls, dicts, ``collector()`` handles), so the benchmark cannot silently
measure a logger that dropped or mixed up values. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "bench", "bench_peers.py")
ROWS = ["floor", "distlog-collect", "distlog-collect-dict", "distlog-log", "distlog-log-dict", "distlog-collector"]


@pytest.mark.timeout(240)
def test_every_distlog_pattern_reads_back_every_point(tmp_path):
    out = tmp_path / "peers.json"
    # 305 steps: the last flush window of the collect patterns is cut short (steps 300-304)
    p = subprocess.run([sys.executable, BENCH, "--steps", "305", "--keys", "3", "--budget", "30",
                        "--only", *ROWS, "--json", str(out)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=220)
    assert p.returncode == 0, p.stderr[-2000:]
    got = {r["name"]: r for r in json.loads(out.read_text())}
    assert sorted(got) == sorted(ROWS)
    for name, r in got.items():
        assert "error" not in r and "read_error" not in r, (name, r)
        assert r["steps"] == 305, (name, r)
        # one point per step and key; for collect, one per flush window of 10 steps, and the
        # last, shorter window (steps 300-304) flushed by close()
        want = 3 * (31 if r["name"] in ("distlog-collect", "distlog-collect-dict", "distlog-collector") else 305)
        assert (r["points_checked"], r["points_expected"]) == (want, want), (name, r.get("errors"))
        assert not r.get("errors"), (name, r["errors"])
        if name != "floor":
            assert r["torch_imported"] is False, name  # opening a run imports no torch
