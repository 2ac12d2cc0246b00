"""Queries against an S3 root (moto server): runs, sweep table, bands, segmented logs (merge,
tail, follow, logs table), files, and the CLI with ``-O`` storage options."""

from __future__ import annotations

import pytest

from distlog.layout import rank_log_path
import distlog
from distlog.cli import main
from distlog.writers.logtable import write_logs_table

pytestmark = [pytest.mark.s3]


@pytest.fixture
def s3_root(s3_bucket):
    url = f"s3://{s3_bucket['bucket']}/root"
    opts = s3_bucket["storage_options"]
    exp = distlog.get_logger(url, segment_max_bytes=300, **opts)
    with exp.experiment("sweep"):
        for lr in (0.1, 0.01):
            with exp.run(f"lr{lr}", params={"lr": lr, "seed": 0}):
                for step in range(12):
                    exp.metrics.log(step=step, loss=lr * (12 - step))
                    if step % 4 == 0:
                        exp.info(f"lr {lr} step {step}", step=step)
                exp.warning(f"done {lr}")
                exp.files.save(b"abc", "blob.bin")
    return url, opts


@pytest.mark.timeout(240)
def test_root_table_and_bands_on_s3(s3_root):
    url, opts = s3_root
    root = distlog.open_root(url, **opts)
    runs = root.runs("sweep")
    assert [r.info.run_id for r in runs] == ["lr0.1", "lr0.01"]
    table = root.table("sweep", metrics=["loss"], varying_only=True)
    assert table["lr"].tolist() == [0.1, 0.01]
    assert table["loss"].tolist() == pytest.approx([0.1, 0.01])
    bands = root.read_metrics("loss@mean", "sweep", bin_size=6, group_by=[])
    assert bands["step"].tolist() == [0, 6] and bands["runs"].tolist() == [2, 2]
    assert bands["mean"][0] == pytest.approx(sum(lr * (12 - s) for lr in (0.1, 0.01) for s in range(6)) / 12)


@pytest.mark.timeout(240)
def test_segmented_logs_files_and_table_on_s3(s3_root):
    url, opts = s3_root
    run = distlog.open_run(f"{url}/sweep/lr0.1", **opts)
    assert len(run.storage.segment_names(rank_log_path(0, 0))) > 1
    msgs = [r.message for r in run.logs.query(grep="^lr ")]
    assert msgs == [f"lr 0.1 step {s}" for s in (0, 4, 8)]
    assert [r.message for r in run.logs.query(tail=1, level="WARNING")] == ["done 0.1"]
    assert [r.message for r in run.logs.follow(tail=2, poll=0.01, lag=0.0)] == \
        [r.message for r in run.logs.query(tail=2)]
    write_logs_table(run.storage)
    table = run.logs.query(level="INFO")
    assert table.source == "table" and table.lines == run.logs.query(level="INFO", source="text").lines
    assert run.files.read_bytes("blob.bin") == b"abc"
    assert run.metrics["loss"]["value"].tolist() == pytest.approx([0.1 * (12 - s) for s in range(12)])


@pytest.mark.timeout(240)
def test_cli_on_s3_with_storage_options(s3_root, capsys):
    url, opts = s3_root
    flags = [f"-O{k}={v}" for k, v in opts.items()]
    assert main(["ls", url, *flags]) == 0
    out = capsys.readouterr().out
    assert "lr0.1" in out and "lr0.01" in out and "completed" in out
    assert main(["logs", f"{url}/sweep/lr0.01", "--level", "WARNING", "--raw", *flags]) == 0
    assert capsys.readouterr().out.strip().endswith("done 0.01")
    assert main(["compare", f"{url}/sweep", "--format", "csv", *flags]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("run_id,status")
    assert main(["show", f"{url}/sweep/lr9", *flags]) == 2
    assert "lr0.01, lr0.1" in capsys.readouterr().err
