from distlog.launcher import detect, launcher_run_id, restart_counts


def test_single_process():
    info = detect({})
    assert (info.rank, info.world_size, info.local_rank, info.launcher) == (0, 1, 0, "none")
    assert launcher_run_id({}) is None


def test_torchrun_table():
    env = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "GROUP_RANK": "1",
           "TORCHELASTIC_RUN_ID": "abc", "TORCHELASTIC_RESTART_COUNT": "2"}
    info = detect(env)
    assert (info.rank, info.world_size, info.local_rank, info.node_rank, info.launcher) == (5, 8, 1, 1, "torchrun")
    assert launcher_run_id(env) == "torchrun-abc"
    assert restart_counts(env) == {"slurm": 0, "torchrun": 2}
    assert launcher_run_id({**env, "TORCHELASTIC_RUN_ID": "none"}) is None


def test_slurm_table_and_local_rank_is_not_global():
    env = {"SLURM_JOB_ID": "7", "SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1",
           "SLURM_NODEID": "1", "SLURM_RESTART_COUNT": "1"}
    info = detect(env)
    assert (info.rank, info.world_size, info.local_rank, info.node_rank, info.launcher) == (3, 4, 1, 1, "slurm")
    assert launcher_run_id(env) == "slurm-7"
    assert detect({"LOCAL_RANK": "3"}).rank == 0


def test_torchrun_inside_slurm_prefers_torchrun_ranks_and_dist_wins():
    env = {"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "1",
           "TORCHELASTIC_RUN_ID": "x", "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3"}
    assert detect(env).rank == 3
    assert detect(env, dist_state=(2, 4)).rank == 2
    assert launcher_run_id(env) == "slurm-7"
    assert launcher_run_id({**env, "DISTLOG_RUN_NAME": "lr0.1-seed2"}) == "lr0.1-seed2"
