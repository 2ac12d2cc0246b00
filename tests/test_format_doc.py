"""docs/FORMAT.md says what is written: every key of run.json and of the commit records, "git":
null outside a checkout, null last_step without metrics, the logs table's level encoding and
its message-slicing rule (row 0 starts at byte 0). Read with json and zarr only, not distlog.

This is the one test module that spells on-store names out as literals (the format's independent
oracle); every other test takes them from ``distlog.layout``, and the last test here pins
``distlog.layout`` to the names docs/FORMAT.md documents, so a change to layout.py that moves a
file fails here instead of passing everywhere else."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import zarr

DOC = Path(__file__).resolve().parents[1] / "docs" / "FORMAT.md"

RUN_KEYS = {"format", "experiment", "run_id", "status", "created", "started", "ended",
            "world_size", "hosts", "launcher", "launcher_ids", "argv", "cwd", "git", "python",
            "torch", "distlog", "tags", "attempt", "last_step", "error", "rank_errors", "attempts",
            "nonfinite_from"}
ATTEMPT_KEYS = {"attempt", "started", "ended", "status", "error", "world_size", "hosts",
                "launcher", "launcher_ids", "ranks", "restart_counts", "resume_step", "resume",
                "rewind", "last_step"}  # (the last two: written when the attempt closes)
ROW_COMMIT_KEYS = {"format", "table", "columns", "chunk_rows", "lengths", "time", "final"}
FILES_COMMIT_KEYS = {"format", "table", "length", "columns", "time"}
LOGS_COMMIT_KEYS = {"format", "generation", "rows", "hosts", "columns", "sources", "time"}


def _write(tmp_path: Path, body: str) -> Path:
    """Run ``body`` in a fresh process whose working directory is not a git checkout."""
    script = ("import numpy as np, distlog\nexp = distlog.get_logger('root')\n"
              "with exp.run('r'):\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n")
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-c", script], cwd=work, check=True, timeout=120,
                   env={**__import__("os").environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)})
    return work / "root" / "default" / "r"


def test_every_documented_key_is_written_and_nothing_else(tmp_path):
    run = _write(tmp_path, """
        exp.metrics.log(step=3, loss=0.5)
        exp.metrics.log(step=4, loss=float("nan"), acc=0.5)
        exp.metrics.log_histogram("w", np.arange(10.0), bins=4, step=3)
        exp.files.save(b"abc", "a.txt")
        exp.info("first", k=1)
        exp.warning("second")
    """)
    meta = json.loads((run / "run.json").read_text())
    assert set(meta) == RUN_KEYS
    assert [set(a) for a in meta["attempts"]] == [ATTEMPT_KEYS]
    assert meta["git"] is None and meta["last_step"] == 4 and meta["nonfinite_from"] == {"loss": 4.0}
    scalars = json.loads((run / "scalars.commit.json").read_text())
    assert set(scalars) == ROW_COMMIT_KEYS | {"nonfinite_from"} and scalars["nonfinite_from"] == {"loss": 4.0}
    assert set(json.loads((run / "histograms.commit.json").read_text())) == ROW_COMMIT_KEYS
    assert set(json.loads((run / "files.commit.json").read_text())) == FILES_COMMIT_KEYS
    logs = json.loads((run / "logs.commit.json").read_text())
    assert set(logs) == LOGS_COMMIT_KEYS
    doc = DOC.read_text()
    for key in RUN_KEYS | ATTEMPT_KEYS | ROW_COMMIT_KEYS | FILES_COMMIT_KEYS | LOGS_COMMIT_KEYS:
        assert f'"{key}"' in doc, f"docs/FORMAT.md does not mention the key {key!r}"

    # the logs table, read by the documented rules
    group = zarr.open_group(str(run / "logs.zarr" / logs["generation"]), mode="r")
    records = np.asarray(group["records"][:])
    col = {c: i for i, c in enumerate(logs["columns"])}
    message = bytes(np.asarray(group["message"][:]))
    ends = records[:, col["message_end"]].astype(int)
    starts = np.concatenate([[0], ends[:-1]])  # message_end[-1] is taken as 0
    texts = [message[a:b - 1].decode() for a, b in zip(starts, ends)]
    levels = dict(zip(texts, records[:, col["level"]].astype(int)))
    assert levels["first"] == 20 and levels["second"] == 30  # logging's numbers
    fields = bytes(np.asarray(group["fields"][:]))
    fends = records[:, col["fields_end"]].astype(int)
    fstarts = np.concatenate([[0], fends[:-1]])
    by_text = {t: fields[a:b - 1].decode() for t, a, b in zip(texts, fstarts, fends)}
    assert json.loads(by_text["first"]) == {"k": 1} and by_text["second"] == ""


def test_optional_parts_are_absent_and_last_step_is_null(tmp_path):
    run = _write(tmp_path, """
        exp.info("text only")
    """)
    meta = json.loads((run / "run.json").read_text())
    assert meta["last_step"] is None and meta["git"] is None
    present = {p.name for p in run.iterdir()}
    for absent in ("params.json", "README.md", "scalars.commit.json", "histograms.commit.json",
                   "files", "files.commit.json", "ranks"):
        assert absent not in present, (absent, sorted(present))


def test_layout_module_writes_the_documented_names():
    from distlog import cas
    from distlog import layout as L

    d = "ab" + "0" * 62
    pins = [  # (what distlog.layout / distlog.cas give, the literal name, as docs/FORMAT.md shows it)
        (L.RUN_FILE, "run.json", "`run.json`"),
        (L.PARAMS_FILE, "params.json", "`params.json`"),
        (L.README_FILE, "README.md", "`README.md`"),
        (L.rank_log_path(3, 1), "logs/rank-00003.attempt-1.log", "`logs/rank-RRRRR.attempt-A.log`"),
        (L.rank_dir(1), "ranks/rank-00001", "`ranks/rank-RRRRR/scalars.zarr/`"),
        (L.manifest_path(2), "files/manifest-rank-00002.jsonl", "`files/manifest-rank-RRRRR.jsonl`"),
        (L.failure_path(1, 2), "failures/attempt-0001-rank-00002.json",
         "`failures/attempt-AAAA-rank-RRRRR.json`"),
        (L.heartbeat_path(2), "heartbeats/rank-00002.json", "`heartbeats/rank-RRRRR.json`"),
        (L.attempt_claim_path(3), "attempts/attempt-0003.json", "`attempts/attempt-AAAA.json`"),
        (cas.blob_path(d), f".distlog/cas/sha256/ab/{d}", ".distlog/cas/sha256/<d[:2]>/<d>"),
        (cas.lease_path(d), f".distlog/cas/uploads/{d}.json", ".distlog/cas/uploads/<d>.json"),
        (cas.fresh_path(d), f".distlog/cas/fresh/{d}", ".distlog/cas/fresh/<d>"),
    ]
    for table in ("scalars", "histograms", "telemetry", "files", "logs"):
        pins.append((L.table_zarr(table), f"{table}.zarr", f"`{table}.zarr/`"))
        pins.append((L.table_commit(table), f"{table}.commit.json", f"`{table}.commit.json`"))
    doc = DOC.read_text()
    for got, literal, documented in pins:
        assert got == literal, f"distlog.layout gives {got!r}; docs/FORMAT.md documents {literal!r}"
        assert documented in doc, f"docs/FORMAT.md no longer shows {documented}"
    assert (L.SCALARS_TABLE, L.HISTOGRAMS_TABLE, L.TELEMETRY_TABLE, L.FILES_TABLE, L.LOGS_TABLE) == (
        "scalars", "histograms", "telemetry", "files", "logs")
    assert (L.LOGS_DIR, L.MANIFEST_DIR, L.FAILURES_DIR, L.HEARTBEAT_DIR, L.RANKS_DIR) == (
        "logs", "files", "failures", "heartbeats", "ranks")
    assert (L.STORE_DIR, L.CAS_DIR) == (".distlog", ".distlog/cas")
    assert L.failure_prefix(1) == "attempt-0001-" and L.parse_log_name("rank-00003.attempt-1.log") == (3, 1)
    assert L.is_manifest_name("manifest-rank-00002.jsonl") and L.parse_log_name("rank-3.log") is None
