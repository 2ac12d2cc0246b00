"""The sweep campaign of tests/test_sweep_s33_campaign.py on the GCS emulator (fake-gcs-server,
tests/support/servers.py): ~20 runs written to ``gs://`` (completed, killed, live, resumed, a
run without params or metrics), read with ``open_root().runs()``/``table()``, ``distlog
ls``/``compare`` and the dashboard's ``/api/runs``, ``/api/keys``, ``/api/compare``, every
answer checked against the oracle built from what was written. Then the same root read the
ways the second sweep of stop 33 found faults in (tests/test_sweep_s33b_bugs.py): opened at an
experiment folder with ``-e`` relative to it, runs named twice by URL, each run's page named by
the path asked for, and ``--sort`` with NaN, booleans and text against the documented order.
"""

from __future__ import annotations

import json
import math

import pytest

import distlog
from distlog.query.order import sort_key
from test_sweep_s33_campaign import _sweep, cli


def _opts(o):
    return [x for k, v in o.items() for x in ("-O", f"{k}={v}")]


def check_read_paths(root, opts):
    """The reads of tests/test_sweep_s33b_bugs.py on an object store, against ``table()``."""
    from starlette.testclient import TestClient

    from distlog.dashboard.app import make_app

    df = distlog.open_root(root, **opts).table(metrics=["loss"])
    paths = [f"{e}/{r}" for e, r in zip(df["experiment"], df["run_id"])]
    sub = sorted(p.rpartition("/")[2] for p in paths if p.startswith("beta/sub/"))
    assert sub, paths
    beta = f"{root}/beta"
    # -e relative to a root opened at an experiment folder, and as recorded
    for e in ("sub", "beta/sub"):
        assert sorted(r.info.run_id for r in distlog.open_root(beta, **opts).runs(experiment=e)) == sub
        code, out, err = cli("ls", beta, "-e", e, "--format", "json", *_opts(opts))
        assert code == 0, err
        assert sorted(r["run_id"] for r in json.loads(out)) == sub
    # a run named twice by URL, and with its experiment folder: one row each, first named first
    first = sub[-1]
    code, out, err = cli("compare", f"{beta}/sub/{first}", f"{beta}/sub", f"{beta}/sub/{first}",
                         "--format", "json", *_opts(opts))
    assert code == 0, err
    got = [r["run_id"] for r in json.loads(out)]
    assert got[0] == first and sorted(got) == sub, got
    code, out, err = cli("show", f"{beta}/sub/{first}", *_opts(opts))
    assert code == 0 and out.splitlines()[0].split() == ["run", f"beta/sub/{first}"], (err, out[:200])
    # the dashboard at the root and at the experiment folder: each run's page by its path
    for served, prefix in ((root, ""), (beta, "beta/")):
        client = TestClient(make_app(distlog.open_root(served, **opts)), base_url="http://127.0.0.1")
        listed = [r["path"] for r in client.get("/api/runs").json()["runs"]]
        want = sorted(p[len(prefix):] for p in paths if p.startswith(prefix))
        assert sorted(listed) == want, served
        for p in listed:
            assert client.get("/api/run", params={"run": p}).json()["path"] == p
        q = [("run", p) for p in listed[:3] + listed[:2]]
        assert list(client.get("/api/keys", params=q).json()["params"]) == listed[:3]
    # --sort against the documented order (the table's own values: NaN, bools, text, None)
    flat = {p: r.flat_params for p, r in zip(paths, distlog.open_root(root, **opts).runs())}
    for col in ("lr", "loss"):
        for desc in (False, True):
            code, out, err = cli("compare", root, "-m", "loss", "--all-params", "--sort", col,
                                 *(["--desc"] if desc else []), "--format", "json", *_opts(opts))
            assert code == 0, err
            rows = json.loads(out)
            vals = [_value(r.get(col)) for r in rows]
            keys = [sort_key(v) for v in vals]
            present = [k for k in keys if k[0] < 3]
            assert present == sorted(present, reverse=desc), (col, desc, vals)
            assert [k[0] for k in keys[len(present):]] == sorted(k[0] for k in keys[len(present):]), vals
    assert flat


def _value(v):
    """A JSON cell as the table held it (``"nan"`` is NaN there; infinities as numbers)."""
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(v, v) if isinstance(v, str) else v


@pytest.mark.timeout(400)
def test_sweep_campaign_gcs(gcs_bucket, tmp_path, monkeypatch):
    root = f"gs://{gcs_bucket['bucket']}/sweep"
    opts = gcs_bucket["storage_options"]
    _sweep(tmp_path, monkeypatch, 3304, 10, root, opts, ranked=False)
    check_read_paths(root, opts)


def test_a_gcs_root_in_a_bucket_that_does_not_exist_says_so(fake_gcs_server, tmp_path, capsys):
    """gcsfs lists a missing bucket as empty: ``distlog ls`` said "nothing at ...: no runs or
    experiments there" and ``distlog serve`` served an empty dashboard (on S3 both name the
    bucket and stop)."""
    from support.servers import gcs_options

    from distlog.cli import main
    from distlog.query import RunNotFound

    opts = gcs_options(fake_gcs_server["endpoint_url"])
    with pytest.raises(RunNotFound, match=r"the bucket 'no-such-bucket-s42' does not exist; create it first"):
        distlog.open_root("gs://no-such-bucket-s42/x", **opts)
    with pytest.raises(RunNotFound, match="does not exist"):
        distlog.open_root("gs://no-such-bucket-s42/x", allow_empty=True, **opts)  # (what serve opens)
    code = main(["ls", "gs://no-such-bucket-s42/x", *_opts(opts)])
    assert code == 2 and "the bucket 'no-such-bucket-s42' does not exist" in capsys.readouterr().err
