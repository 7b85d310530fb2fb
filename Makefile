# Two commands: `make run` serves the API on the embedded default,
# `make test` runs the whole suite against MariaDB, Redis and SQLite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test bench check-infra fuzz migrate deploy destroy clean

$(VENV)/.runtime: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	@echo "Serving on http://$(HOST):$(PORT) (embedded SQLite in data/). Try:"
	@echo "  curl -s -X POST 'http://$(HOST):$(PORT)/register?user_name=shir'"
	$(VENV)/bin/chalice local --host $(HOST) --port $(PORT) --stage dev

test: $(VENV)/.runtime
	./scripts/ensure-services.sh
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.runtime
	./scripts/ensure-services.sh
	$(PY) bench/bench.py $(BENCH_ARGS)

# Offline checks of the cloud side: checkov, HCL parsing, the config
# renderer, and `chalice package` of the prod stage.
check-infra: $(VENV)/.runtime
	./scripts/check-infra.sh

# Schemathesis against `chalice local` (auth on, temp SQLite), driven by
# openapi.yaml; schemathesis lives in .venv-fuzz. FUZZ_EXAMPLES, FUZZ_SEED.
fuzz: $(VENV)/.runtime
	./scripts/fuzz.sh $(FUZZ_ARGS)

migrate: $(VENV)/.runtime
	$(PY) -m chalicelib.migrate

# Cloud: Terraform (infra/, its own state) -> .chalice/config.json prod stage
# -> chalice deploy -> the migrate Lambda. Needs AWS credentials and terraform.
STAGE ?= prod
deploy: $(VENV)/.runtime
	terraform -chdir=infra init -input=false
	terraform -chdir=infra apply -input=false -var stage=$(STAGE)
	terraform -chdir=infra output -json | $(PY) scripts/render_chalice_config.py - --stage $(STAGE)
	$(VENV)/bin/chalice deploy --stage $(STAGE)
	$(VENV)/bin/chalice invoke --stage $(STAGE) --name migrate
	@url=$$($(VENV)/bin/chalice url --stage $(STAGE)); \
	  echo "API: $$url"; \
	  echo "Try: curl -s -X POST \"$${url}register?user_name=shir\""

destroy: $(VENV)/.runtime
	$(VENV)/bin/chalice delete --stage $(STAGE)
	terraform -chdir=infra destroy -input=false -var stage=$(STAGE)

clean:
	rm -rf $(VENV) .venv-infra .venv-fuzz data .pytest_cache .hypothesis
