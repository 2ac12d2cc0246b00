"""scripts/train_ddp.py under real ``torchrun`` (gloo on the CPU), read back with the query API.

* ``--standalone --nproc_per_node 4``: one run, 4 per-rank logs with the right global ranks,
  local ranks, node id and host; the reduced series equal an independent oracle (the raw
  values each rank dumped, reduced with NumPy: ``support.train_ddp_oracle``).
* Two ``torchrun --nnodes 2`` invocations posing as two hosts (c10d rendezvous on 127.0.0.1,
  a free port, ``DISTLOG_HOSTNAME`` per invocation): per-rank logs carry the global rank, the
  node id (torchrun's GROUP_RANK) and the host of the invocation that started the rank.
* ``--max-restarts 1`` with rank 1 crashing once: torchrun restarts the workers, the restart
  is attempt 1 of the same run, the series is rewound to the checkpoint step and continues
  with no duplicate or missing step, and the crash is in rank 1's log of attempt 0.
  ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``: with torchrun's default shared rendezvous store
  the restarted workers read the dead workers' gloo addresses left in the store and fail with
  "Gloo connectFullMesh failed ... Connection refused" (torch 2.13, pytorch/pytorch#135712);
  the opt-out gives every restart round a fresh store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import distlog
from support.train_ddp_oracle import REPO, TORCHRUN, TRAIN_DDP, check_run, flush_steps, read_dumps

pytestmark = pytest.mark.dist

TIMEOUT_S = 240  # one torchrun invocation; typical 10-30 s on 2 busy cores


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "TORCHELASTIC_", "DISTLOG_")) and k not in (
               "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "w")
    try:
        return subprocess.Popen([str(TORCHRUN), *args], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()


def _stop(proc: subprocess.Popen) -> None:
    """End a torchrun that overran: SIGTERM makes it stop its workers; then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _wait_all(procs: list[tuple[subprocess.Popen, Path]], timeout: float = TIMEOUT_S) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        for proc, log in procs:
            left = deadline - time.monotonic()
            try:
                proc.wait(max(left, 0.1))
            except subprocess.TimeoutExpired:
                pytest.fail(f"torchrun did not finish within {timeout} s\n{_outputs(procs)}")
    finally:
        for proc, _ in procs:
            _stop(proc)
    return [p.returncode for p, _ in procs]


def _outputs(procs: list[tuple[subprocess.Popen, Path]]) -> str:
    return "\n".join(f"--- {log.name} (rc={p.returncode})\n{log.read_text()[-6000:]}" for p, log in procs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _only_run(root: Path) -> distlog.query.run_reader.RunReader:
    runs = distlog.open_root(str(root)).runs()
    assert len(runs) == 1, [r.info.path for r in runs]
    return runs[0]


def _check_rank_logs(run, dumps, attempt: int = 0) -> None:
    """Each rank's log lines carry the identity that rank's own process saw (its dump header)."""
    for (rank, att), d in dumps.items():
        if att != attempt:
            continue
        recs = list(run.logs.query(rank=rank, attempt=attempt))
        assert recs, f"no log records of rank {rank}, attempt {attempt}"
        env = d.env
        assert int(env["RANK"]) == rank
        want = {(rank, int(env["LOCAL_RANK"]), int(env["GROUP_RANK"]), env["DISTLOG_HOSTNAME"], attempt)}
        got = {(r.rank, r.local_rank, r.node, r.host, r.attempt) for r in recs}
        assert got == want, f"rank {rank}: log records say {got}, the process saw {want}"
        assert any("training from step" in r.message and f"on rank {rank} of" in r.message for r in recs)


@pytest.mark.timeout(TIMEOUT_S + 60)
def test_standalone_four_ranks(tmp_path):
    root, dump = tmp_path / "root", tmp_path / "oracle"
    steps, every = 12, 4
    log = tmp_path / "torchrun.log"
    proc = _start(["--standalone", "--nproc_per_node", "4", str(TRAIN_DDP), "--root", str(root),
                   "--steps", str(steps), "--flush-every", str(every), "--experiment", "solo"],
                  _env(DISTLOG_HOSTNAME="solo-host", DISTLOG_ORACLE_DUMP=str(dump)), log)
    assert _wait_all([(proc, log)]) == [0], _outputs([(proc, log)])

    run = _only_run(root)
    info = run.info
    assert info.run_id.startswith("torchrun-"), info.run_id  # torchrun's rendezvous id
    assert (info.status, info.world_size, info.hosts, info.launcher) == ("completed", 4, ("solo-host",), "torchrun")
    assert [a["attempt"] for a in info.attempts] == [0]
    assert run.logs.ranks() == [0, 1, 2, 3] and run.logs.attempts() == [0]
    dumps = read_dumps(dump, info.run_id)
    assert sorted(dumps) == [(r, 0) for r in range(4)]
    assert all(d.env["GROUP_RANK"] == "0" and d.env["LOCAL_RANK"] == str(r) for (r, _), d in dumps.items())
    _check_rank_logs(run, dumps)
    check_run(run, dumps, steps=flush_steps(steps, every))
    # two odd ranks collect the extra key: count 2 per step, not 4
    assert run.metrics.read("train/odd_rank_grad_norm")["count"].tolist() == [2 * every] * (steps // every)


@pytest.mark.timeout(TIMEOUT_S + 60)
def test_two_torchrun_invocations_as_two_nodes(tmp_path):
    root, dump = tmp_path / "root", tmp_path / "oracle"
    steps, every = 8, 4
    rdzv_id = f"e2e-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    procs = []
    for host in ("hostA", "hostB"):
        log = tmp_path / f"torchrun-{host}.log"
        args = ["--nnodes", "2", "--nproc_per_node", "2", "--rdzv-backend", "c10d",
                "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", rdzv_id,
                "--local-addr", "127.0.0.1", "--rdzv-conf", "join_timeout=120",
                str(TRAIN_DDP), "--root", str(root), "--steps", str(steps),
                "--flush-every", str(every), "--experiment", "twonodes"]
        procs.append((_start(args, _env(DISTLOG_HOSTNAME=host, DISTLOG_ORACLE_DUMP=str(dump)), log), log))
    assert _wait_all(procs) == [0, 0], _outputs(procs)

    run = _only_run(root)
    info = run.info
    assert info.run_id == f"torchrun-{rdzv_id}"
    assert (info.status, info.world_size, info.hosts) == ("completed", 4, ("hostA", "hostB"))
    dumps = read_dumps(dump, info.run_id)
    assert sorted(dumps) == [(r, 0) for r in range(4)]
    # torchrun gives node g (GROUP_RANK) the global ranks 2g and 2g+1, all from one invocation
    for (r, _), d in dumps.items():
        assert (int(d.env["GROUP_RANK"]), int(d.env["LOCAL_RANK"])) == divmod(r, 2), d.env
    assert dumps[(0, 0)].env["DISTLOG_HOSTNAME"] == dumps[(1, 0)].env["DISTLOG_HOSTNAME"]
    assert dumps[(2, 0)].env["DISTLOG_HOSTNAME"] == dumps[(3, 0)].env["DISTLOG_HOSTNAME"]
    assert dumps[(0, 0)].env["DISTLOG_HOSTNAME"] != dumps[(2, 0)].env["DISTLOG_HOSTNAME"]
    _check_rank_logs(run, dumps)
    recorded = {p["rank"]: (p["host"], p["node"], p["local_rank"]) for p in info.attempts[0]["ranks"]}
    assert recorded == {r: (d.env["DISTLOG_HOSTNAME"], int(d.env["GROUP_RANK"]), int(d.env["LOCAL_RANK"]))
                        for (r, _), d in dumps.items()}
    check_run(run, dumps, steps=flush_steps(steps, every))


@pytest.mark.timeout(TIMEOUT_S + 60)
def test_max_restarts_crash_is_a_new_attempt_of_the_same_run(tmp_path):
    root, dump = tmp_path / "root", tmp_path / "oracle"
    steps, every, crash = 16, 4, 9  # checkpoint at 3 and 7; rank 1 raises at step 9
    log = tmp_path / "torchrun.log"
    proc = _start(["--standalone", "--nproc_per_node", "2", "--max-restarts", "1",
                   "--monitor-interval", "0.5", str(TRAIN_DDP), "--root", str(root),
                   "--steps", str(steps), "--flush-every", str(every),
                   "--crash-once-at", str(crash), "--experiment", "restart"],
                  _env(DISTLOG_HOSTNAME="restart-host", DISTLOG_ORACLE_DUMP=str(dump),
                       TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1"), log)
    assert _wait_all([(proc, log)]) == [0], _outputs([(proc, log)])
    out = log.read_text()

    run = _only_run(root)
    info = run.info
    assert info.run_id.startswith("torchrun-") and info.status == "completed", (info, out[-3000:])
    atts = info.attempts
    assert [a["attempt"] for a in atts] == [0, 1], atts
    assert atts[1]["resume_step"] == 7 and atts[1]["restart_counts"]["torchrun"] == 1, atts[1]
    assert atts[1]["status"] == "completed"
    assert run.logs.attempts() == [0, 1]
    assert sorted((r, a) for _, r, a in run.logs.sources()) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    crashed = run.logs.query(rank=1, attempt=0, grep="injected crash")
    assert len(crashed) >= 1, "rank 1's crash is not in its attempt-0 log"
    resumed = run.logs.query(attempt=1, grep="training from step 8")
    assert sorted(r.rank for r in resumed) == [0, 1]

    dumps = read_dumps(dump, info.run_id)
    assert sorted(dumps) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [dumps[(0, a)].env["TORCHELASTIC_RESTART_COUNT"] for a in (0, 1)] == ["0", "1"]
    assert dumps[(0, 1)].resume_step == 7
    check_run(run, dumps, steps=flush_steps(steps, every))
