# distlog — two commands: `make install`, then `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_SPEC ?= torch==$(TORCH_VERSION)
BIN := $(VENV)/bin
NPROC ?= 2

.PHONY: install system-packages test test-fast demo bench gpu-check slurm-start slurm-stop clean

install: system-packages $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[all,test]" "$(TORCH_SPEC)"
	$(BIN)/pip check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Debian packages the tests use: SLURM + munge (a one-node cluster for the slurm tests),
# ffmpeg comes from imageio-ffmpeg's wheel so it is not needed here.
system-packages:
	@if ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; \
	  else echo "note: slurm-wlm/munge not installed (need root + apt); slurm tests will be skipped"; fi; \
	fi

test:  # the whole suite (CI runs this)
	$(BIN)/python -m pytest -n auto -q

# the inner loop: no spawned ranks, no S3/GCS servers, no SLURM (markers in pyproject.toml)
test-fast:
	$(BIN)/python -m pytest -n auto -q -m "not dist and not s3 and not gcs and not slurm"

demo:
	$(BIN)/torchrun --standalone --nproc_per_node 2 scripts/train_ddp.py --root ./runs --steps 60
	$(BIN)/distlog ls ./runs

bench:
	for b in scripts/bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

gpu-check:  # on a machine with CUDA: collect() makes no host sync; CUDA and CPU flushes agree
	$(BIN)/python scripts/gpu_check.py

slurm-start:
	bash scripts/slurm_local.sh start

slurm-stop:
	bash scripts/slurm_local.sh stop

clean:
	rm -rf $(VENV) runs .pytest_cache
