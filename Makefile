# Atlas — every entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
# Where the tools role installs minikube, kubectl and helm (roles/tools/defaults: tools_bin_dir). On PATH
# here, so the targets that run them outside Ansible find them (make tilt: Tilt calls minikube docker-env).
export ATLAS_TOOLS_BIN_DIR ?= $(HOME)/.local/bin
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/$(VENV)/bin:$(ATLAS_TOOLS_BIN_DIR):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

SERVICE ?= users
PORT    ?= 8080
ENV     ?= dev
PROFILE ?= full

# The services: every folder services/<name>/<name>/__init__.py (services/common holds atlas_common, a library).
_parts = $(subst /, ,$(1))
SERVICES := $(sort $(foreach f,$(wildcard services/*/*/__init__.py),\
  $(if $(filter $(word 2,$(call _parts,$(f))),$(word 3,$(call _parts,$(f)))),$(word 2,$(call _parts,$(f))))))

STAMP_VENV := $(VENV)/.installed
STAMP_HELM := .tools/.helm-installed
STAMP_DEB  := .tools/.debian-installed
STAMP_GWAPI := .tools/.gateway-api-installed
STAMP_FUZZ := .venv-fuzz/.installed

##@ Setup
$(STAMP_VENV): requirements-dev.txt services/requirements.txt services/*/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e services/common $(foreach s,$(SERVICES),-e services/$(s))
	touch $@

$(STAMP_HELM): scripts/install-tools.sh
	scripts/install-tools.sh helm
	touch $@

# Debian packages the tests run for real: PostgreSQL, wrk (bench), Prometheus with promtool, postgres_exporter
DEB_TOOLS := postgresql wrk prometheus prometheus-postgres-exporter
$(STAMP_DEB): scripts/install-tools.sh Makefile
	scripts/install-tools.sh $(DEB_TOOLS)
	touch $@

# The Gateway API / Envoy Gateway schema validators the chart tests use (npm, lockfile-pinned)
$(STAMP_GWAPI): scripts/install-tools.sh tests/support/gateway_api/package-lock.json tests/support/gateway_api/validate.mjs
	scripts/install-tools.sh gateway-api-schemas
	touch $@

# schemathesis in its own venv (its pins conflict with ansible's): make fuzz, and the fuzz verdict's tests
$(STAMP_FUZZ): scripts/fuzz-venv.sh evidence/requirements-fuzz.txt
	scripts/fuzz-venv.sh

.PHONY: venv
venv: $(STAMP_VENV) ## Install the project virtualenv (.venv) from the pinned requirements

.PHONY: setup
setup: $(STAMP_VENV) $(STAMP_HELM) $(STAMP_DEB) $(STAMP_GWAPI) $(STAMP_FUZZ) ## Install everything the tests need: .venv, helm, PostgreSQL server, wrk, Prometheus (promtool), postgres_exporter, Gateway API schemas

##@ Test
.PHONY: test
test: setup ## THE test command: lint, then every test suite (installs what it needs first)
	scripts/run-tests.sh

.PHONY: lint
lint: venv $(STAMP_HELM) ## ruff, yamllint, ansible-lint and helm lint
	scripts/lint.sh

.PHONY: chart-docs
chart-docs: venv ## Regenerate the chart's settings from the services' declarations (scripts/chart-settings.py), then the README's parameters table
	$(PY) scripts/chart-settings.py
	scripts/chart-docs.sh

##@ Services
.PHONY: run
run: venv check-service ## Run one service (granian, as in the image): make run SERVICE=users PORT=8081 (database from PG* variables)
	ATLAS_BIND=$(BIND_HOST):$(PORT) exec $(PY) -m $(SERVICE) serve

.PHONY: migrate
migrate: venv check-service ## Apply one service's migrations: make migrate SERVICE=users (database from PG* variables)
	$(PY) -m $(SERVICE) migrate

# Local runs listen on loopback only; BIND_HOST=0.0.0.0 exposes the service to the network on purpose.
BIND_HOST ?= 127.0.0.1
.PHONY: check-service
check-service:
	@case " $(SERVICES) " in *" $(SERVICE) "*) ;; *) echo "SERVICE must be one of: $(SERVICES), got '$(SERVICE)'" >&2; exit 2;; esac

##@ Provisioning
.PHONY: deploy
deploy: venv ## Bootstrap Minikube, build the images, install and verify Atlas (site.yml, inventories/dev; needs Docker)
	ansible-playbook site.yml -i inventories/dev

.PHONY: render
render: venv $(STAMP_HELM) ## Values + manifests without a cluster: make render ENV=dev PROFILE=full -> build/<env>/<profile>/
	ansible-playbook playbooks/render.yml -i inventories/$(ENV) -e atlas_profile=$(PROFILE)

.PHONY: destroy
destroy: venv ## Uninstall the release, keep the data (inventories/dev); DELETE_DATA=yes deletes volumes and Secrets too (asks; CONFIRM=yes), DELETE_MINIKUBE=true the profile
	ansible-playbook playbooks/teardown.yml -i inventories/dev -e minikube_delete=$(or $(DELETE_MINIKUBE),false) \
	  -e delete_data=$(or $(DELETE_DATA),no) $(if $(CONFIRM),-e confirm=$(CONFIRM))

##@ Developer loop
.PHONY: tilt
tilt: venv $(STAMP_HELM) ## Live-update dev loop on the dev Minikube (after one make deploy): make tilt PROFILE=users-only
	@command -v tilt >/dev/null || { echo "tilt is not installed: see https://docs.tilt.dev/install.html" >&2; exit 1; }
	tilt up -- --profile=$(PROFILE)

.PHONY: tilt-down
tilt-down: ## Remove what make tilt applied; database volumes, Secrets and the namespace stay (docs/troubleshooting.md)
	@command -v tilt >/dev/null || { echo "tilt is not installed: see https://docs.tilt.dev/install.html" >&2; exit 1; }
	tilt down

##@ Molecule
# One shared Minikube for all four scenarios: each scenario's destroy keeps it (ATLAS_MOLECULE_KEEP_CLUSTER),
# and the profile is deleted once at the end, pass or fail. Without a cluster this stops at the first line.
# No .tools/bin helm here: the scenarios' bootstrap gets minikube, kubectl and helm the way users do (roles/tools).
.PHONY: molecule-cluster
molecule-cluster: venv ## Molecule scenarios in cluster mode (Docker+Minikube, or ATLAS_KUBECONFIG); fails if no cluster
	@MOLECULE_MODE=cluster $(PY) molecule/shared/atlas_mode.py --require cluster
	MOLECULE_MODE=cluster ATLAS_MOLECULE_KEEP_CLUSTER=true molecule test --all; rc=$$?; \
	MOLECULE_MODE=cluster ATLAS_MOLECULE_KEEP_CLUSTER=false molecule destroy -s full || rc=1; exit $$rc

##@ Evidence
# Loopback only, bounded in time; each prints its tables and writes build/<name>.md.
.PHONY: bench
bench: setup ## Throughput, latency, memory, start time vs pgbench; table -> build/bench.md (BENCH_SECONDS=8 per run)
	$(PY) -m evidence.bench

.PHONY: faults
faults: setup ## Outage drills under write load: database down, users down, worker killed (fails on a lost write)
	$(PY) -m evidence.faults

.PHONY: fuzz
fuzz: setup ## schemathesis (every check) against each service's OpenAPI + bad-input counts (fails on a failed check or no case)
	$(PY) -m evidence.fuzz

##@ Help
.PHONY: help
help: ## List every target
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z_-]+:.*##/ {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
