# imex-run: common jobs. `make help` lists them.
BIN := target/release/imex-run
DEVICE ?=
DEVICE_FLAG := $(if $(DEVICE),--device $(DEVICE),)
# Seeds of the reproduction targets: make reproduce-small SEEDS=0
SEEDS ?= 0 1 2
# Points of a sweep run at once here: make h-alpha JOBS=1
JOBS ?= 2
PAPER_SEEDS ?= 0
REPORT = $(BIN) report results --out figures

# $(call seeds,CONFIG,NAME,SEEDS): one run per seed, named NAME_seedS. A run
# that already finished (with its checkpoints) is not trained again.
seeds = for s in $(3); do $(BIN) $(1) --set experiment.seed=$$s --set experiment.name=$(2)_seed$$s $(DEVICE_FLAG) || exit $$?; done

.PHONY: help build test quick small paper reproduce-cpu sgd-cpu probe-cpu reproduce-small reproduce report bench profile data fmt lint fuzz clean-results check gpu-bin gpu-check

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## release build (CPU and CUDA backends)
	cargo build --release

test: ## the test suite, as CI runs it
	cargo test --release

quick: build ## a one-epoch smoke run of the small IMEX experiment (~1 min)
	$(BIN) experiments/qtips_imex_small.toml --set experiment.name=quick --set training.epochs=1 --set data.train_limit=64 --restart $(DEVICE_FLAG)

small: build ## the CPU-scale pair (IMEX and ResNet), see README for times
	$(BIN) experiments/qtips_imex_small.toml $(DEVICE_FLAG)
	$(BIN) experiments/qtips_resnet_small.toml $(DEVICE_FLAG)

paper: build ## the paper's Q-tips pair (100 epochs each; a GPU is advised: DEVICE=cuda)
	$(BIN) experiments/qtips_imex.toml $(DEVICE_FLAG)
	$(BIN) experiments/qtips_resnet.toml $(DEVICE_FLAG)

reproduce-cpu: build ## the converged CPU-scale study (README's headline): IMEX and ResNet x 3 seeds, then the report (see README for times)
	$(call seeds,experiments/qtips_imex_cpu.toml,qtips_imex_cpu,$(SEEDS))
	$(call seeds,experiments/qtips_resnet_cpu.toml,qtips_resnet_cpu,$(SEEDS))
	$(REPORT)

# The CPU study's geometry and epochs under the paper's optimiser: plain SGD at
# lr 1e-3 (constant), and the same with momentum 0.9; seed 0 of each network.
SGD = --set training.optimizer=sgd --set training.learning_rate=1e-3 --set training.lr_schedule=constant
sgd-cpu: build ## the CPU study's networks under the paper's SGD (and with momentum 0.9), seed 0 (see README)
	for a in imex resnet; do \
	  $(BIN) experiments/qtips_$${a}_cpu.toml $(SGD) --set experiment.name=qtips_$${a}_cpu_sgd $(DEVICE_FLAG) || exit $$?; \
	  $(BIN) experiments/qtips_$${a}_cpu.toml $(SGD) --set training.momentum=0.9 --set experiment.name=qtips_$${a}_cpu_sgd_momentum $(DEVICE_FLAG) || exit $$?; \
	done

# The stability probes (imex-run probe) of the converged CPU study's runs:
# the committed reference runs by default, PROBE_RUNS=... for others.
PROBE_RUNS ?= $(sort $(wildcard results/reference/qtips_imex_cpu_seed[0-9] results/reference/qtips_resnet_cpu_seed[0-9]))
probe-cpu: build ## the stability probes on the CPU study's runs (README "Stability"), then the report
	for r in $(PROBE_RUNS); do $(BIN) probe $$r || exit $$?; done
	$(REPORT)

reproduce-small: build ## the CPU-scale study, IMEX and ResNet x 3 seeds, then the report (see README for times)
	$(call seeds,experiments/qtips_imex_small.toml,qtips_imex_small,$(SEEDS))
	$(call seeds,experiments/qtips_resnet_small.toml,qtips_resnet_small,$(SEEDS))
	$(REPORT)

reproduce: build ## the paper's Q-tips study (100 epochs each; DEVICE=cuda advised), then the report
	$(call seeds,experiments/qtips_imex.toml,qtips_imex,$(PAPER_SEEDS))
	$(call seeds,experiments/qtips_resnet.toml,qtips_resnet,$(PAPER_SEEDS))
	$(REPORT)

report: build ## redraw every table and figure from results/ into figures/ (no training)
	$(REPORT)

bench: build ## training step, evaluation and building blocks; writes bench.json
	$(BIN) bench --json bench.json $(DEVICE_FLAG)

ARCH ?= resnet
profile: build ## where the narrow training step's time goes (perf, ARCH=resnet|imex): a table by kernel
	perf record --call-graph dwarf,16384 -F 499 -o step.perf -- \
	  $(BIN) bench --geometry narrow --arch $(ARCH) --skip-ops --skip-eval --steps 20 --warmup 2
	perf script -i step.perf -F tid,ip,sym | python3 scripts/profile_step.py

check: build ## numerical check of a device against the peer fixtures and the CPU (DEVICE=cuda on a GPU)
	$(BIN) check $(if $(DEVICE),--device $(DEVICE),--device cpu --geometry narrow)

gpu-bin: build ## the release binary stripped and gzipped for the device tool: target/gpu/imex-run.gz
	mkdir -p target/gpu
	strip -o target/gpu/imex-run $(BIN)
	gzip -6 -c target/gpu/imex-run > target/gpu/imex-run.gz
	@ls -l target/gpu/imex-run.gz

gpu-check: ## on an NVIDIA machine: check, bench, PyTorch bench, 2 paper epochs, summary (DEVICE=cpu QUICK=1 to try here)
	DEVICE=$(or $(DEVICE),cuda) bash scripts/gpu-check.sh $(if $(QUICK),--quick,)

data: build ## write the Q-tips set to data/qtips (the runs also create it on demand)
	$(BIN) data qtips --out data/qtips

fuzz: ## a long property-test pass over the config parser and the data loader
	PROPTEST_CASES=20000 cargo test --release --test fuzz

fmt: ## format the code
	cargo fmt --all

lint: ## clippy, warnings as errors
	cargo clippy --release --all-targets -- -D warnings

clean-results: ## delete the runs you trained (results/*) but keep the committed reference runs (results/reference/)
	git clean -fdX results/

.PHONY: depth
depth: build ## the synthetic depth pair (IMEX and ResNet), CPU, see README "Depth"
	$(BIN) experiments/depth_synth_imex.toml $(DEVICE_FLAG)
	$(BIN) experiments/depth_synth_resnet.toml $(DEVICE_FLAG)

.PHONY: h-alpha slurm-up slurm-down
h-alpha: build ## the h-alpha sweep (50 runs of 8 epochs, about 3.5 h here with JOBS=2; run again to resume), then the report
	$(BIN) sweep experiments/sweeps/h_alpha_cpu.toml --jobs $(JOBS)
	$(REPORT)

slurm-up: ## a one-node Slurm cluster on this machine, for tests/slurm.rs (root; apt-get install slurm-wlm munge)
	scripts/slurm-local.sh start

slurm-down: ## stop it
	scripts/slurm-local.sh stop
