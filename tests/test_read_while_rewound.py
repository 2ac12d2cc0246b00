"""A reader of a live run never gets fill values as rows while a resumed attempt rewinds a
series: it read the previous attempt's commit record (100 rows), the new attempt published
the shorter length and rewrote the tail chunk (NaN past the new end), then the reader read
rows [0, 100) of that chunk. The reader is held between its two reads (once) by wrapping
``read_commit_record``: timing only; the rewind and the reads are the real ones."""

import numpy as np
import pytest

import distlog
import distlog.query.series as S


def _attempt(root):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    return exp, exp.run("r")


@pytest.mark.parametrize("how", ["read", "read_many", "last"])
def test_a_read_racing_a_rewind_returns_whole_rows(tmp_path, monkeypatch, how):
    root = str(tmp_path)
    exp, run_cm = _attempt(root)
    with run_cm:
        for s in range(100):
            exp.metrics("m").log(step=s, x=2.0 * s)
    run = distlog.open_run(f"{root}/default/r")
    exp, run_cm = _attempt(root)
    real, held = S.read_commit_record, []

    def held_once(*a, **k):
        commit = real(*a, **k)  # the reader has the previous attempt's record (100 rows)...
        if not held:
            held.append(True)
            for s in range(30, 40):  # ...while the new attempt restarts at step 30
                exp.metrics("m").log(step=s, x=2.0 * s)
            exp.metrics.commit()
        return commit

    with run_cm:
        monkeypatch.setattr(S, "read_commit_record", held_once)
        if how == "read":
            steps = run.metrics.read("m/x")["step"]
        elif how == "read_many":
            steps = run.metrics.read_many()["m/x"]["step"]
        else:
            steps = np.array([run.metrics.last()["m/x"]["step"]])
        monkeypatch.setattr(S, "read_commit_record", real)
    assert held and np.isfinite(steps).all(), steps
    assert steps[-1] == 39.0 and (how == "last" or steps.tolist() == list(range(40)))


@pytest.mark.parametrize("how", ["table_last", "table_max", "read_metrics", "ls"])
def test_many_run_readers_racing_a_rewind_return_whole_rows(tmp_path, monkeypatch, how):
    """The sweep table and sweep bands (``query.batch``, read by the CLI and the dashboard)
    read many runs' commit records in one round, then their chunks: the same race, the same
    re-read. A second run, not rewound, is read alongside."""
    import distlog.query.batch as B

    root = str(tmp_path)
    for rid in ("other", "r"):
        exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
        with exp.run(rid):
            for s in range(100):
                exp.metrics("m").log(step=s, x=2.0 * s)
    exp, run_cm = _attempt(root)
    real, held = B.read_json_objects, []

    def held_once(items, **kw):
        docs = real(items, **kw)  # the reader has the previous attempt's records (100 rows)...
        if not held and any(p.endswith("commit.json") for _, p in items):
            held.append(True)
            for s in range(30, 40):  # ...while the new attempt restarts at step 30
                exp.metrics("m").log(step=s, x=2.0 * s)
            exp.metrics.commit()
        return docs

    reader = distlog.open_root(root)
    with run_cm:
        monkeypatch.setattr(B, "read_json_objects", held_once)
        if how == "read_metrics":
            df = reader.read_metrics("m/x@last", per_run=True)
            steps = {rid: g["step"].tolist() for rid, g in df.groupby("run_id")}
            values = df.set_index(["run_id", "step"])["value"]
            assert steps == {"r": list(range(40)), "other": list(range(100))}, steps
            assert values["r"].tolist() == [2.0 * s for s in range(40)]
        elif how == "ls":  # the running run's last step comes from its series' last rows
            from distlog.query.root import run_rows

            rows = {r["run_id"]: r for r in run_rows(reader.runs())}
            assert rows["r"]["last_step"] == 39, rows["r"]
        else:
            final = "last" if how == "table_last" else "max"
            t = reader.table(metrics=["m/x"], final=final).set_index("run_id")
            col = [c for c in t.columns if c.startswith("m/x")][0]
            assert t.loc["r", col] == 78.0 and t.loc["other", col] == 198.0, t[col]
        monkeypatch.setattr(B, "read_json_objects", real)
    assert held


@pytest.mark.parametrize("how", ["read", "read_many", "read_metrics", "histogram"])
def test_a_read_racing_a_rewind_that_left_no_fill_returns_one_attempts_rows(tmp_path, monkeypatch, how):
    """Chunks of 8 rows: the new attempt restarts at step 30 and ends its commit at a chunk's
    end (48 rows), so chunks 3-5 hold its rows and chunk 6 on hold the previous attempt's
    (steps 48-55): a reader of the previous record (100 rows) got steps 0-99, every one
    increasing, no NaN, rows 30-47 the new attempt's (x = 3 s) among the old ones (x = 2 s).
    Those rows were logged after the record the reader took: it reads again."""
    import distlog.query.batch as B

    root = str(tmp_path)
    log = (lambda exp, s, k: exp.log_histogram("h", np.full(4, k * s), bins=2, step=s)) if how == "histogram" else \
        (lambda exp, s, k: exp.metrics("m").log(step=s, x=k * s))
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, chunk_rows=8)
    with exp.run("r"):
        for s in range(100):
            log(exp, s, 2.0)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, chunk_rows=8)
    run_cm = exp.run("r")
    where, name = (B, "read_json_objects") if how == "read_metrics" else (S, "read_commit_record")
    real, held = getattr(where, name), []

    def held_once(*a, **k):
        got = real(*a, **k)  # the reader has the previous attempt's record (100 rows)...
        if not held and (how != "read_metrics" or any(p.endswith("commit.json") for _, p in a[0])):
            held.append(True)
            for s in range(30, 48):  # ...while the new attempt restarts at step 30
                log(exp, s, 3.0)
            exp.metrics.commit()
        return got

    run = distlog.open_run(f"{root}/default/r")
    with run_cm:
        monkeypatch.setattr(where, name, held_once)
        if how == "read":
            s = run.metrics.read("m/x")
            steps, values = s["step"], s["value"]
        elif how == "read_many":
            s = run.metrics.read_many()["m/x"]
            steps, values = s["step"], s["value"]
        elif how == "histogram":
            h = run.metrics.histogram("h")
            steps, values = h.step, h.edges[:, 0] + 0.5  # (constant values: edges at v ± 0.5)
        else:
            df = distlog.open_root(root).read_metrics("m/x@last", per_run=True)
            steps, values = df["step"].to_numpy(), df["value"].to_numpy()
        monkeypatch.setattr(where, name, real)
    assert held
    assert np.asarray(steps).tolist() == list(range(48)), steps  # the new attempt's rows, all of them
    assert np.asarray(values).tolist() == [2.0 * s for s in range(30)] + [3.0 * s for s in range(30, 48)]
