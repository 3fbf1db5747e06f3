# feedring — every target a person needs. CONFIG=other.toml runs another cluster side by side.
CONFIG ?= cluster.toml
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help install cluster certs netcluster netcluster-stop node stop status test test-unit test-integration lint deploy-check protos check-protos bench bench-quick bench-stress store-growth soak clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/' | expand -t 20

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)  ## create .venv and install feedring with its dependencies

cluster: install  ## start every process of $(CONFIG) in the background and wait until healthy
	$(PY) -m ops.local_cluster start --config $(CONFIG)

certs: install  ## a local CA and a certificate per process of $(CONFIG) (TLS; made by make cluster too when [tls] is on)
	$(PY) -m ops.certs --config $(CONFIG)

node: install  ## start one more (empty) node: make node ID=n4 ADDR=127.0.0.1:7104 [FEED=127.0.0.1:7204], then feedring node add
	@test -n "$(ID)" -a -n "$(ADDR)" || { echo "usage: make node ID=n4 ADDR=127.0.0.1:7104 [FEED=127.0.0.1:7204] [CONFIG=...]"; exit 2; }
	$(PY) -m ops.local_cluster start-node --config $(CONFIG) --id $(ID) --address $(ADDR) --feed "$(FEED)"

netcluster: install  ## root only: $(CONFIG)'s processes each on its own emulated host (network namespace); SKEW=5: node clocks +-5 s apart
	$(PY) -m ops.netcluster start --config $(CONFIG) $(if $(SKEW),--skew-clocks $(SKEW))

netcluster-stop:  ## stop the netcluster and remove every namespace and link it made (even after a failed start)
	@if [ -x $(PY) ]; then $(PY) -m ops.netcluster stop --config $(CONFIG); else echo "not installed: nothing to stop"; fi

stop:  ## stop exactly the processes `make cluster` started
	@if [ -x $(PY) ]; then $(PY) -m ops.local_cluster stop --config $(CONFIG); else echo "not installed: nothing to stop"; fi

status: install  ## processes of $(CONFIG), then the cluster's own view (feedring status)
	$(PY) -m ops.local_cluster status --config $(CONFIG)
	-$(VENV)/bin/feedring --config $(CONFIG) status

test: install check-protos  ## the whole suite: unit + integration against real processes
	$(PY) -m pytest tests -q --durations=20

test-unit: install  ## unit tests only (seconds)
	$(PY) -m pytest tests/unit -q

test-integration: install  ## integration tests only
	$(PY) -m pytest tests/integration -q

lint: install  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy common node feed router client ops examples

deploy-check: install  ## deploy/ offline: Kubernetes manifests (API schemas), systemd units, Containerfile (hadolint)
	$(VENV)/bin/pytest -q tests/unit/test_deploy.py

protos: install  ## regenerate protos/*_pb2*.py from protos/*.proto
	$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. protos/*.proto

check-protos: install  ## fail if the committed generated code is stale
	@rm -rf build/protos-check && mkdir -p build/protos-check
	@$(PY) -m grpc_tools.protoc -I. --python_out=build/protos-check --pyi_out=build/protos-check --grpc_python_out=build/protos-check protos/*.proto
	@for f in build/protos-check/protos/*; do cmp -s $$f protos/$$(basename $$f) || { echo "stale generated code: protos/$$(basename $$f) (run make protos)"; exit 1; }; done
	@echo "generated code is up to date"

bench: install  ## the benchmark (20-30 minutes); table, JSON and PNG go to bench/results/
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench

bench-quick: install  ## a short benchmark run (about 6 minutes)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench --quick

bench-stress: install  ## only the stress phase: the post rate the cluster sustains (about 12 minutes)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench --stress

store-growth: install  ## LevelDB's own memtable/table sizes against feedring's as a node's store grows to 2 GB (about 5 minutes)
	$(PY) -m bench.store_growth

SECONDS ?= 3600
soak: install  ## SECONDS (default 3600) of load at 70% of the stress capacity; fails if memory, fds, disk or lag grow without bound
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench --soak $(SECONDS)

clean: stop  ## stop the cluster and delete its data, logs and build files
	rm -rf data .run build
