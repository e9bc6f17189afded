# One entry point for common tasks; CI calls `make test` through .ci/run.
CARGO ?= cargo
DATA_DIR ?= kapi-data

.PHONY: run build release deps fmt fmt-check clippy test test-unit test-e2e check fuzz

## Run kapi with the embedded store (state in ./kapi-data); prints the kubectl command.
run: deps
	$(CARGO) run --release -p kapi -- --data-dir $(DATA_DIR)

build:
	$(CARGO) build -p kapi

release:
	$(CARGO) build --release -p kapi

## Install what the build and the tests need on a fresh machine (idempotent).
deps:
	@scripts/install-deps.sh

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## The whole test suite: formatting, lints, unit tests and end-to-end tests.
test: deps fmt-check clippy
	scripts/run-tests.sh

test-unit:
	$(CARGO) test --workspace --exclude kapi-e2e

test-e2e: build
	$(CARGO) test -p kapi-e2e -- --test-threads=2

check: fmt-check clippy test-unit

## Fuzz every target (fuzz/, cargo-fuzz) for FUZZ_SECONDS (default 10) each, from the
## checked-in corpus; not part of `make test` (see docs/RELIABILITY.md, "Fuzzing").
fuzz:
	scripts/fuzz.sh
