# vpsweb — every target is documented by its "##" comment; `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-unit lint worker flower simulator bench bench-full compose-up compose-down clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install vpsweb with its dev extras

# Offline (the LLM simulator) unless DEEPSEEK_API_KEY, the default modes' key, is set.
demo: $(STAMP) ## Translate a sample poem, parallel_count 3 (embedded Redis and worker; simulator unless DEEPSEEK_API_KEY is set)
	$(BIN)/vpsweb translate examples/fog.txt --source-lang en --target-lang zh-CN \
		--title Fog --author "Carl Sandburg" --parallel-count 3 --output-dir translations \
		$(if $(DEEPSEEK_API_KEY),,--offline)

# The suite mostly waits (simulated LLM latency, process start-up), so it runs on more
# workers than a 2-core machine has cores; each worker starts its own Redis, simulator
# and celery workers on free ports. loadgroup hands out one test at a time (a group
# marked xdist_group at once) in collection order, which tests/conftest.py sorts longest
# first: the long fault tests start at once on different workers and the short ones
# fill in around them (load and worksteal give a worker a whole slice up front).
TEST_JOBS ?= 4
test: $(STAMP) ## Run the whole test suite (unit + integration with real Redis, workers, simulator), TEST_JOBS=4 workers
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadgroup

test-unit: $(STAMP) ## Run only the unit tests (no processes started)
	$(BIN)/python -m pytest -q -m "not integration" tests/unit

lint: $(STAMP) ## ruff check, ruff format check, mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy -p vpsweb

worker: $(STAMP) ## Start a worker on all queues against VPSWEB_REDIS_URL
	$(BIN)/vpsweb worker

flower: $(STAMP) ## Start Flower against VPSWEB_REDIS_URL (needs VPSWEB_FLOWER_USER/PASSWORD)
	$(BIN)/vpsweb flower

simulator: $(STAMP) ## Start the offline LLM simulator on 127.0.0.1:8765
	$(BIN)/vpsweb simulate-llm --port 8765

bench: $(STAMP) ## Quick benchmark run (about 7 minutes); writes bench/results/
	$(BIN)/vpsweb bench --quick

bench-full: $(STAMP) ## Full benchmark run (about 21 minutes)
	$(BIN)/vpsweb bench

compose-up: ## docker compose up (Redis, workers, Flower); needs a Docker engine
	docker compose up -d --build

compose-down: ## docker compose down
	docker compose down

clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
