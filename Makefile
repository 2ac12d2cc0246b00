# distlog — two commands: `make install`, then `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_SPEC ?= torch==$(TORCH_VERSION)
BIN := $(VENV)/bin
NPROC ?= 2

UPLOT_VERSION ?= 1.6.32
UPLOT_DIR := distlog/dashboard/static/vendor/uplot

.PHONY: install system-packages test test-fast demo bench bench-peers gpu-check slurm-start slurm-stop clean vendor-uplot

install: system-packages $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[all,test]" "$(TORCH_SPEC)"
	$(BIN)/pip check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Debian packages the tests use: SLURM + munge (a one-node cluster for the slurm tests) and
# Chromium (the dashboard's browser tests drive /usr/bin/chromium with Playwright; Playwright's
# own browser download is not used). ffmpeg comes from imageio-ffmpeg's wheel.
system-packages:
	@if ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge chromium >/dev/null; \
	  else echo "note: slurm-wlm/munge/chromium not installed (need root + apt); slurm and browser tests will be skipped"; fi; \
	fi

test:  # the whole suite (CI runs this)
	$(BIN)/python -m pytest -n auto -q

# the inner loop: no spawned ranks, no S3/GCS servers, no SLURM (markers in pyproject.toml)
test-fast:
	$(BIN)/python -m pytest -n auto -q -m "not dist and not s3 and not gcs and not slurm and not integrations and not browser"

demo:
	$(BIN)/torchrun --standalone --nproc_per_node 2 scripts/train_ddp.py --root ./runs --steps 60
	$(BIN)/distlog ls ./runs

bench:
	for b in scripts/bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# the peer benchmark: TensorBoard, wandb, MLflow and Aim in a venv of their own (they pull
# botocore versions that break s3fs; the `bench` extra pins what `pip check` needs)
BENCH_VENV ?= .venv-bench
bench-peers:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q "$(TORCH_SPEC)"
	$(BENCH_VENV)/bin/pip install -q -e ".[bench]" "$(TORCH_SPEC)"
	$(BENCH_VENV)/bin/pip check
	$(BENCH_VENV)/bin/python scripts/bench/bench_peers.py

gpu-check:  # on a machine with CUDA: collect() makes no host sync; CUDA and CPU flushes agree
	$(BIN)/python scripts/gpu_check.py
	$(BIN)/python scripts/bench/bench_collect_cuda.py

slurm-start:
	bash scripts/slurm_local.sh start

slurm-stop:
	bash scripts/slurm_local.sh stop

# uPlot is vendored (committed, MIT) so installs and clusters need no npm and no internet;
# this refreshes it from the npm registry.
vendor-uplot:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack -q uplot@$(UPLOT_VERSION) >/dev/null && tar xzf uplot-$(UPLOT_VERSION).tgz && \
	cp package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE $(CURDIR)/$(UPLOT_DIR)/ && rm -rf $$tmp
	cd $(UPLOT_DIR) && sha256sum uPlot.iife.min.js uPlot.min.css

clean:
	rm -rf $(VENV) runs .pytest_cache
