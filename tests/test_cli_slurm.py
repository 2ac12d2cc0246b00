"""`distlog slurm ...` hands its arguments to distlog.slurm (grid files, rendered templates)."""

from distlog import cli, slurm


def test_distlog_slurm_grid_writes_the_same_grid(tmp_path, capsys):
    out = tmp_path / "grid.txt"
    assert cli.main(["slurm", "grid", "--param", "lr=0.1,0.01", "--param", "seed=0,1,2", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 6
    assert [slurm.read_grid_line(str(out), i) for i in range(6)] == slurm.expand_grid(
        {"lr": [0.1, 0.01], "seed": [0, 1, 2]})
    assert "sbatch --array=0-5" in capsys.readouterr().err


def test_distlog_slurm_usage_error_is_exit_2(capsys):
    assert cli.main(["slurm", "render", "no_such_template"]) == 2
    assert "error:" in capsys.readouterr().err
