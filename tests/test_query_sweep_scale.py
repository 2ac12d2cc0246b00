"""Reading at sweep scale (issue 16): the concurrent read path answers exactly what a
straightforward reader does, on local disk, S3 (moto) and GCS (fake-gcs-server), and its cost
is counted through a proxy: requests per run, no HEAD before a GET, no object read twice,
and reads in flight together (a regression to one-at-a-time reads fails here, by count).

The root: two experiments of three finished runs (2 keys, 30 steps, params, logs) written on
local disk through the real write path, then copied as is to a bucket. The reference reader
below uses only JSON, ``zarr.open_array`` and the storage primitives, one object at a time.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import numpy as np
import pytest

from distlog.layout import PARAMS_FILE, RUN_FILE, SCALARS_TABLE, table_commit, table_zarr
import distlog
from distlog.cli import main as cli_main
from distlog.serdes import flatten
from distlog.query.root import run_rows
from distlog.storage import open_storage


KEYS = ("loss", "acc")
STEPS = 30
EXPERIMENTS = ("mnist", "cifar")
PER_EXPERIMENT = 3


def _write_root(path: str) -> None:
    exp = distlog.get_logger(path)
    for e, name in enumerate(EXPERIMENTS):
        with exp.experiment(name):
            for i in range(PER_EXPERIMENT):
                lr = [0.1, 0.01, 0.001][i]
                with exp.run(f"r{i}", params={"optim": {"lr": lr}, "seed": i, "tag": name}):
                    for step in range(STEPS):
                        loss = lr * (STEPS - step) + e
                        acc = float("nan") if step == 7 else step / STEPS - i
                        exp.metrics.log(step=step, loss=loss, acc=acc)
                        if step % 10 == 0:
                            exp.metrics.flush()
                            exp.info(f"{name} r{i} step {step}", step=step)


@pytest.fixture(scope="module")
def local_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("scale") / "root")
    _write_root(path)
    return path


def _upload(local: str, fs: Any, prefix: str) -> None:
    files = [os.path.join(d, n) for d, _, names in os.walk(local) for n in names]
    fs.put(files, [f"{prefix}/{os.path.relpath(p, local)}" for p in files])


# ---- the reference: one object at a time, no query layer -------------------------------------
def _reference(url: str, opts: dict[str, Any], keys: tuple[str, ...], final: str) -> dict[str, Any]:
    """``{run path: {"params": flat, "last_step": .., key: value}}`` read plainly."""
    import zarr

    root = open_storage(url, **opts)
    out: dict[str, Any] = {}
    for e in EXPERIMENTS:
        for i in range(PER_EXPERIMENT):
            st = root.child(f"{e}/r{i}")
            meta = json.loads(st.read_bytes(RUN_FILE))
            commit = json.loads(st.read_bytes(table_commit(SCALARS_TABLE)))
            row: dict[str, Any] = {"params": flatten(json.loads(st.read_bytes(PARAMS_FILE))),
                                   "last_step": meta.get("last_step"), "status": meta["status"]}
            for key in keys:
                n = commit["lengths"][key]
                zstore = st.zarr_store(table_zarr(SCALARS_TABLE), read_only=True)
                arr = zarr.open_array(store=zstore, path=key, mode="r", zarr_format=3)
                v = np.asarray(arr[:n])[:, list(arr.attrs["columns"]).index("value")]
                if final == "last":
                    row[key] = float(v[-1])
                else:
                    f = v[np.isfinite(v)]
                    row[key] = float({"min": np.min, "max": np.max, "mean": np.mean}[final](f))
            out[f"{e}/r{i}"] = row
    return out


def _check_table(url: str, opts: dict[str, Any], final: str,
                 direct: dict[str, Any] | None = None) -> str:
    """The sweep table through ``opts`` checked against the reference (read via ``direct``,
    not through a counting proxy); its CSV."""
    df = distlog.open_root(url, **opts).table(metrics=list(KEYS), final=final)
    ref = _reference(url, opts if direct is None else direct, KEYS, final)
    assert len(df) == len(ref) == len(EXPERIMENTS) * PER_EXPERIMENT
    for _, row in df.iterrows():
        want = ref[f"{row['experiment']}/{row['run_id']}"]
        assert row["status"] == want["status"] == "completed"
        assert row["last_step"] == want["last_step"] == STEPS - 1
        for k, v in want["params"].items():
            assert row[k] == v, (k, row[k], v)
        for key in KEYS:
            col = key if final == "last" else f"{key}@{final}"
            got, exp = row[col], want[key]
            assert (np.isnan(got) and np.isnan(exp)) or got == exp, (col, got, exp)
    return df.to_csv()


# ---- local -------------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_sweep_table_matches_the_plain_reader_local(local_root: str) -> None:
    for final in ("last", "min", "mean"):
        _check_table(local_root, {}, final)
    # read_metrics bands: every run, every row, the same as reading each series alone
    runs = distlog.open_root(local_root).runs("mnist")
    bands = distlog.open_root(local_root).read_metrics("loss@mean", "mnist", per_run=True)
    for run in runs:
        mine = bands[bands["run_id"] == run.info.run_id]["value"].to_numpy()
        assert np.array_equal(mine, run.metrics.read("loss")["value"])


@pytest.mark.timeout(240)
def test_stale_consolidated_metadata_is_not_trusted(tmp_path: Any, local_root: str) -> None:
    """Consolidated metadata that covers fewer rows than committed (a resumed run that grew
    after its close consolidated) is passed over for the key's own metadata."""
    import shutil

    root = str(tmp_path / "root")
    shutil.copytree(local_root, root)
    zjson = os.path.join(root, "mnist", "r0", table_zarr(SCALARS_TABLE), "zarr.json")
    with open(zjson) as f:
        doc = json.load(f)
    doc["consolidated_metadata"]["metadata"]["loss"]["shape"][0] = 3  # stale: 3 < 30 rows
    with open(zjson, "w") as f:
        json.dump(doc, f)
    _check_table(root, {}, "last")
    _check_table(root, {}, "max")
    run = distlog.open_run(os.path.join(root, "mnist", "r0"))
    assert run.metrics.last()["loss"]["step"] == STEPS - 1
    assert len(run.metrics.summary()) == 2


@pytest.mark.timeout(240)
def test_running_run_last_step_read_live(tmp_path: Any) -> None:
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, commit_interval=3600)
    with exp.experiment("live"):
        with exp.run("done"):
            exp.metrics.log(step=0, loss=1.0)
        with exp.run("going"):
            for step in range(5):
                exp.metrics.log(step=step * 10, loss=1.0, acc=2.0)
            exp.metrics.log(step=99, other=3.0)
            exp.metrics.commit()  # committed, but the run's metadata has no last step yet
            table = distlog.open_root(root).table(metrics=["loss"])
            going = table[table["run_id"] == "going"].iloc[0]
            assert going["status"] == "running" and going["last_step"] == 99
            assert going["loss"] == 1.0
            rows = {r["run_id"]: r for r in run_rows(distlog.open_root(root).runs())}
            assert rows["going"]["last_step"] == 99 and rows["done"]["last_step"] == 0


# ---- S3 through a counting proxy ---------------------------------------------------------
@pytest.mark.s3
@pytest.mark.timeout(300)
def test_s3_same_answers_and_bounded_concurrent_requests(local_root: str, s3_bucket: dict[str, Any],
                                                         capsys: pytest.CaptureFixture) -> None:
    import s3fs
    from support.faultproxy import LatencyProxy

    bucket = s3_bucket["bucket"]
    fs = s3fs.S3FileSystem(**s3_bucket["storage_options"], skip_instance_cache=True)
    _upload(local_root, fs, f"{bucket}/root")
    url = f"s3://{bucket}/root"
    expected = {final: _check_table(local_root, {}, final) for final in ("last", "mean")}
    runs = len(EXPERIMENTS) * PER_EXPERIMENT
    # a delay keeps requests in flight long enough to see whether they overlap
    with LatencyProxy(s3_bucket["endpoint_url"], delay=0.2) as proxy:
        opts = {**s3_bucket["storage_options"], "endpoint_url": proxy.url}

        proxy.reset()
        direct = s3_bucket["storage_options"]
        assert _check_table(url, opts, "last", direct) == expected["last"]  # byte for byte
        gets = [p for m, p, *_ in proxy.log if m == "GET" and "/root/" in p]
        detail = f"{len(proxy.log)} requests: " + " ".join(f"{m} {p}" for m, p, *_ in proxy.log)
        assert proxy.count("HEAD") == 0, detail
        dupes = [p for p, n in Counter(gets).items() if n > 1]
        assert not dupes, f"read more than once in one query: {dupes}"
        # per run: run.json, params.json, commit, consolidated zarr.json, 2 chunks
        table_requests = len(proxy.log)
        assert table_requests <= 6 * runs + 2 * len(EXPERIMENTS) + 3, detail
        assert proxy.max_in_flight >= runs, f"reads were not concurrent: {proxy.max_in_flight}"

        proxy.reset()
        assert _check_table(url, opts, "mean", direct) == expected["mean"]
        assert proxy.count("HEAD") == 0

        proxy.reset()
        o = [a for k, v in opts.items() for a in ("-O", f"{k}={v}")]
        assert cli_main(["ls", url, *o]) == 0
        ls_out = capsys.readouterr().out
        assert ls_out.count("\n") == runs + 2
        assert len(proxy.log) <= 2 * runs, f"ls: {len(proxy.log)} requests for {runs} runs"
        assert proxy.max_in_flight >= runs // len(EXPERIMENTS)

        one = f"{url}/mnist/r1"
        proxy.reset()
        frame = distlog.open_run(one, **opts).metrics.frame("loss")
        assert len(frame) == STEPS
        assert [m for m, *_ in proxy.log] == ["GET"] * 4  # run.json, commit, zarr.json, chunk

        proxy.reset()
        summary = distlog.open_run(one, **opts).metrics.summary()
        assert summary["key"].tolist() == ["acc", "loss"] and proxy.count("HEAD") == 0
        assert len(proxy.log) <= 5 and proxy.max_in_flight >= 2  # chunks together

        proxy.reset()
        assert cli_main(["show", one, *o]) == 0
        show = capsys.readouterr().out
        assert "optim.lr = 0.01" in show and proxy.count("HEAD") == 0
        assert proxy.max_in_flight >= 3, "show reads params, metrics, logs and files at once"

        proxy.reset()
        assert cli_main(["logs", one, *o]) == 0
        logs = capsys.readouterr().out
        assert logs.count("mnist r1 step") == 3
    # the same commands on local disk print the same (but the run's URL)
    assert cli_main(["show", os.path.join(local_root, "mnist", "r1")]) == 0
    local_show = capsys.readouterr().out.splitlines()
    assert [x for x in local_show if not x.startswith("url ")] == \
        [x for x in show.splitlines() if not x.startswith("url ")]
    assert cli_main(["logs", os.path.join(local_root, "mnist", "r1")]) == 0
    assert capsys.readouterr().out == logs


# ---- GCS ---------------------------------------------------------------------------------
@pytest.mark.gcs
@pytest.mark.timeout(300)
def test_gcs_same_answers(local_root: str, gcs_bucket: dict[str, Any]) -> None:
    import gcsfs

    fs = gcsfs.GCSFileSystem(**gcs_bucket["storage_options"], skip_instance_cache=True)
    _upload(local_root, fs, f"{gcs_bucket['bucket']}/root")
    url = f"gs://{gcs_bucket['bucket']}/root"
    for final in ("last", "max"):
        assert _check_table(url, gcs_bucket["storage_options"], final) == \
            _check_table(local_root, {}, final)
    run = distlog.open_run(f"{url}/cifar/r2", **gcs_bucket["storage_options"])
    local = distlog.open_run(os.path.join(local_root, "cifar", "r2"))
    assert run.metrics.to_frame().equals(local.metrics.to_frame())
    np.testing.assert_equal(run.metrics.last(), local.metrics.last())  # NaN-aware (argmin_rank of log() rows)


@pytest.mark.timeout(240)
def test_running_run_last_step_counts_its_histograms(tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    """A running run's last step (read from its stored rows) is its largest committed step of
    any series or histogram, as run.json's is once it closes: a run that logged only
    histograms showed no last step, one whose histograms ran ahead showed its scalars'."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, commit_interval=3600, heartbeat_interval=0)
    # run id: (scalar steps, histogram steps)
    logged = {"hist_only": ([], [2, 5, 12]), "hist_ahead": (range(10), [2, 5, 40]),
              "scalars_ahead": (range(10), [2, 4])}
    with exp.experiment("live"):
        for rid, (scalar_steps, hist_steps) in logged.items():
            last = max([*scalar_steps, *hist_steps])  # the oracle: the largest step logged
            with exp.run(rid):
                for step in scalar_steps:
                    exp.metrics.log(step=step, loss=1.0)
                for step in hist_steps:
                    exp.log_histogram("w", np.arange(10.0) * step, bins=4, step=step)
                exp.metrics.commit()  # committed; run.json has no last step while it runs

                reader = distlog.open_root(root)
                runs = reader.runs("live")
                run = next(r for r in runs if r.info.run_id == rid)
                assert run.info.status == "running" and run.info.last_step is None
                row = {r["run_id"]: r for r in run_rows(runs)}[rid]
                assert row["last_step"] == last, ("ls", rid, row)
                assert run.metrics.last_step() == last
                t = reader.table("live").set_index("run_id")
                assert t.loc[rid, "last_step"] == last, ("table", rid)
                capsys.readouterr()
                assert cli_main(["show", os.path.join(root, "live", rid)]) == 0
                show = capsys.readouterr().out
                assert any(ln.split()[:3] == ["last", "step", str(last)] for ln in show.splitlines()), show
            # closed: run.json records the same last step
            assert distlog.open_run(os.path.join(root, "live", rid)).info.last_step == last
