# imex-run: common jobs. `make help` lists them.
BIN := target/release/imex-run
DEVICE ?=
DEVICE_FLAG := $(if $(DEVICE),--device $(DEVICE),)

.PHONY: help build test quick small paper bench data fmt lint fuzz clean-results

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

bench: build ## training step, evaluation and building blocks; writes bench.json
	$(BIN) bench --json bench.json $(DEVICE_FLAG)

data: build ## write the Q-tips set to data/qtips (the runs also create it on demand)
	$(BIN) data qtips --out data/qtips

fuzz: ## a long property-test pass over the config parser and the data loader
	PROPTEST_CASES=20000 cargo test --release --test fuzz

fmt: ## format the code
	cargo fmt --all

lint: ## clippy, warnings as errors
	cargo clippy --release --all-targets -- -D warnings

clean-results: ## delete the run folders (results/*) but keep the committed ones
	git clean -fdX results/

.PHONY: depth
depth: build ## the synthetic depth pair (IMEX and ResNet), CPU, see README "Depth"
	$(BIN) experiments/depth_synth_imex.toml $(DEVICE_FLAG)
	$(BIN) experiments/depth_synth_resnet.toml $(DEVICE_FLAG)
