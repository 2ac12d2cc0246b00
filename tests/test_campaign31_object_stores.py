"""Campaign 31, object stores: what a user with runs in a bucket met, compared with the same
runs on local disk (each test names the problem it pins)."""

from __future__ import annotations

import io

import pandas as pd
import pytest

import distlog
from distlog.storage import open_storage
from support.cli_tree import cli

pytestmark = [pytest.mark.s3]


@pytest.fixture
def s3_run(s3_bucket, monkeypatch):
    """One small run in the bucket, and the ``-O`` flags that read it. ``AWS_ENDPOINT_URL_S3``
    points at a closed loopback port: a writer that ignored the ``-O`` options would go there
    (never to the public endpoint) and fail."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "none")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "none")
    root = f"s3://{s3_bucket['bucket']}/runs"
    opts = s3_bucket["storage_options"]
    exp = distlog.get_logger(root, commit_interval=0.1, **opts)
    with exp.experiment("exp"), exp.run("r1", params={"lr": 0.1}):
        for step in range(6):
            exp.metrics("train").log(step=step, loss=1.0 / (step + 1), acc=0.1 * step)
    flags = [f"-O{k}={v}" for k, v in opts.items()]
    return s3_bucket["bucket"], f"{root}/exp/r1", opts, flags


@pytest.mark.timeout(120)
def test_outputs_to_a_bucket_url_use_the_storage_options(s3_run, capsys):
    """`distlog export RUN -o s3://...` handed the URL to pandas without the `-O` options: it
    went to the default endpoint (the public AWS one) with a traceback; `plot -o s3://...` and
    `ranks --plot s3://...` said "No such file or directory". Each now stores the file through
    distlog's storage with the command's options."""
    bucket, run, opts, flags = s3_run
    code, csv_out, _ = cli(capsys, "export", run, *flags)
    assert code == 0
    store = open_storage(f"s3://{bucket}/out", **opts)

    code, _, err = cli(capsys, "export", run, "-o", f"s3://{bucket}/out/m.csv", *flags)
    assert code == 0, err
    assert store.read_bytes("m.csv").decode() == csv_out

    code, _, err = cli(capsys, "export", run, "-o", f"s3://{bucket}/out/m.parquet", *flags)
    assert code == 0, err
    got = pd.read_parquet(io.BytesIO(store.read_bytes("m.parquet")))
    assert got["key"].tolist() == pd.read_csv(io.StringIO(csv_out))["key"].tolist()

    code, _, err = cli(capsys, "plot", run, "train/loss", "-o", f"s3://{bucket}/out/loss.png", *flags)
    assert code == 0, err
    assert store.read_bytes("loss.png")[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(120)
def test_an_output_url_that_cannot_be_written_is_a_usage_error(s3_run, capsys):
    _, run, _, flags = s3_run
    code, _, err = cli(capsys, "export", run, "-o", "s3://no-such-bucket-c31/m.csv", *flags)
    assert code == 2 and "no-such-bucket-c31" in err and "Traceback" not in err
    code, _, err = cli(capsys, "export", run, "-o", "s3://m.csv", *flags)
    assert code == 2 and "below a bucket" in err


@pytest.mark.timeout(120)
def test_logs_of_a_live_run_on_a_bucket_say_why_there_are_none_yet(s3_bucket, capsys):
    """A running run on S3 publishes each rank's log as a segment every `segment_max_age` s:
    for the first 30 s (and after a kill -9 before then) `distlog logs` found no segment and
    said "run exp/live has no logs", while the same run on local disk showed its records."""
    root = f"s3://{s3_bucket['bucket']}/runs"
    opts = s3_bucket["storage_options"]
    flags = [f"-O{k}={v}" for k, v in opts.items()]
    exp = distlog.get_logger(root, **opts)
    with exp.experiment("exp"), exp.run("live"):
        exp.info("started")
        code, _, err = cli(capsys, "logs", f"{root}/exp/live", *flags)
        assert code == 1
        assert "no logs yet" in err and "segment_max_age" in err
    code, out, _ = cli(capsys, "logs", f"{root}/exp/live", *flags)
    assert code == 0 and "started" in out
