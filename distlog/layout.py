"""Where everything lives on the store: the one owner of distlog's layout (docs/FORMAT.md).

Writers, readers, gc and the dashboard take file, folder and table names from here, so the
read side never imports the write-side API to learn a path. Everything is relative: run paths
to the run folder (``<root>/<experiment>/<run_id>/``), CAS paths to the root.

    <root>/.distlog/cas/...                      content-addressed blobs (``CAS_DIR``)
    <root>/<experiment...>/<run_id>/             a run: a folder holding ``run.json``
        run.json, params.json, README.md
        scalars.zarr + scalars.commit.json       the run's series (rank 0)
        histograms.zarr + .commit.json, telemetry.zarr + .commit.json
        ranks/rank-RRRRR/scalars.zarr ...        series rank R > 0 logged itself
        logs/rank-RRRRR.attempt-A.log            each rank's text log per attempt
        logs.zarr + logs.commit.json             the merged logs table (rank 0, at close)
        files/manifest-rank-RRRRR.jsonl          artifact records per rank
        files.zarr + files.commit.json           the merged files table (rank 0, at close)
        failures/attempt-AAAA-rank-RRRRR.json    a rank's cause of failure
        heartbeats/rank-RRRRR.json               a rank's last sign of life
        attempts/attempt-AAAA.json               attempt A's claim (its rank 0's host, pid, time)
"""

from __future__ import annotations

#: the statuses a reader gives a run (``RunInfo.status``): run.json's own (running, completed,
#: failed, preempted, interrupted: a SIGTERM that was no agreed stop), "stale"
#: (heartbeats stopped while it says running) and "damaged" (its run.json torn or missing)
RUN_STATUSES = ("running", "completed", "failed", "preempted", "interrupted", "stale", "damaged")

RUN_FILE = "run.json"
PARAMS_FILE = "params.json"
README_FILE = "README.md"

SCALARS_TABLE = "scalars"
HISTOGRAMS_TABLE = "histograms"
TELEMETRY_TABLE = "telemetry"
FILES_TABLE = "files"
LOGS_TABLE = "logs"

LOGS_DIR = "logs"
MANIFEST_DIR = "files"
FAILURES_DIR = "failures"
HEARTBEAT_DIR = "heartbeats"
ATTEMPTS_DIR = "attempts"
RANKS_DIR = "ranks"

STORE_DIR = ".distlog"
CAS_DIR = f"{STORE_DIR}/cas"


def table_zarr(table: str) -> str:
    """The Zarr group of a row table (``scalars`` → ``scalars.zarr``)."""
    return f"{table}.zarr"


def is_chunk_key(path: str) -> bool:
    """Whether ``path`` names a chunk of a row table's series: ``<series>/c.<i>.0``, or
    ``<series>/c/<i>/0`` in runs written before chunk keys took the ``.`` separator."""
    parts = path.rstrip("/").split("/")
    dotted = parts[-1].split(".")
    if len(dotted) == 3 and dotted[0] == "c" and dotted[1].isdigit() and dotted[2].isdigit():
        return True
    return len(parts) > 3 and parts[-3] == "c" and parts[-2].isdigit() and parts[-1].isdigit()


def table_commit(table: str) -> str:
    """The commit record of a row table (``scalars`` → ``scalars.commit.json``)."""
    return f"{table}.commit.json"


#: names only a run folder holds directly (besides its run.json): a folder holding one of these
#: but no run.json is a run whose run.json is missing (readers list it damaged, gc keeps its
#: blobs, a start refuses its id). Files, and the scalars' array folder: a folder name such
#: as ``heartbeats`` is also a fine experiment name (``cardio/heartbeats``)
RUN_MARKERS = frozenset({PARAMS_FILE, table_zarr(SCALARS_TABLE),
                         *(table_commit(t) for t in (SCALARS_TABLE, HISTOGRAMS_TABLE, TELEMETRY_TABLE,
                                                     FILES_TABLE, LOGS_TABLE))})


def rank_dir(rank: int) -> str:
    """Where rank ``rank`` (> 0) keeps the series of values it logged itself."""
    return f"{RANKS_DIR}/rank-{rank:05d}"


def rank_log_path(rank: int, attempt: int) -> str:
    return f"{LOGS_DIR}/rank-{rank:05d}.attempt-{attempt}.log"


def parse_log_name(name: str) -> tuple[int, int] | None:
    """``rank-00003.attempt-1.log`` → ``(3, 1)``; None for any other name."""
    if not (name.startswith("rank-") and name.endswith(".log")):
        return None
    try:
        r, a = name[len("rank-") : -len(".log")].split(".attempt-")
        return int(r), int(a)
    except ValueError:
        return None


def manifest_path(rank: int) -> str:
    return f"{MANIFEST_DIR}/manifest-rank-{rank:05d}.jsonl"


def is_manifest_name(name: str) -> bool:
    return name.startswith("manifest-rank-") and name.endswith(".jsonl")


def failure_path(attempt: int, rank: int) -> str:
    """Where a rank records the exception that ended its part of an attempt."""
    return f"{FAILURES_DIR}/attempt-{attempt:04d}-rank-{rank:05d}.json"


def failure_prefix(attempt: int) -> str:
    """The names (in ``FAILURES_DIR``) of attempt ``attempt``'s failure records start so."""
    return f"attempt-{attempt:04d}-"


def heartbeat_path(rank: int) -> str:
    return f"{HEARTBEAT_DIR}/rank-{rank:05d}.json"


def attempt_claim_path(attempt: int) -> str:
    """Created (only where absent) by the process that starts attempt ``attempt``: two
    processes starting one run at the same moment cannot both take a number (``claims``)."""
    return f"{ATTEMPTS_DIR}/attempt-{attempt:04d}.json"


def is_attempt_claim(name: str) -> bool:
    """Whether ``name`` (in ``ATTEMPTS_DIR``) is an attempt's claim: ``attempt-AAAA.json``."""
    digits = name[len("attempt-") : -len(".json")]
    return name.startswith("attempt-") and name.endswith(".json") and digits.isdigit()
