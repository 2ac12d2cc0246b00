"""Helpers shared by the test modules (test modules never import each other).

* ``servers``: moto S3 and fake-gcs-server fixtures on 127.0.0.1 (registered in conftest.py);
* ``ranks``: ``run_ranks``, real torch.distributed (gloo) ranks in spawned processes;
* ``faultproxy``: an HTTP proxy that injects object-store failures, or records requests;
* ``e2e_script``, ``flush_scenarios``: what the spawned ranks run, with NumPy oracles;
* ``train_ddp_oracle``: the oracle for runs of ``scripts/train_ddp.py``;
* ``slurm``: SLURM commands and the ``cluster`` fixture;
* ``cli_tree``: a fixed run tree for the CLI tests; ``live_writer``: a writer process.
"""
