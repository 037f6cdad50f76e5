# The two commands: `make book` and `make test`. Each creates .venv when it is missing.
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= quick
# test workers (pytest-xdist): one per core, at most 4; WORKERS=0 runs the tests in this process
WORKERS ?= auto
PYTEST_ARGS ?=
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.xaistudy-installed

.PHONY: book test test-fast lint clean help

help:
	@echo "make book     run every chapter ($(PROFILE) profile) and build _build/html/index.html"
	@echo "              (EXERCISES=1: also recompute the exercises' answer keys, ~9 min)"
	@echo "make test     run the test suite (what CI runs)"
	@echo "make test-fast  the development lane: every test but the end-to-end runs (-m 'not slow')"
	@echo "make lint     ruff"
	@echo "make clean    remove the built book, executed chapters and caches (keeps .venv)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python tools/install.py $(BIN)/python
	@touch $(STAMP)

book: $(STAMP)
	$(BIN)/xaistudy book --profile $(PROFILE) $(if $(EXERCISES),--exercises,)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --maxprocesses 4 --dist load --maxschedchunk 1 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --maxprocesses 4 --dist load --maxschedchunk 1 -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check xaistudy tests benchmarks tools

clean:
	rm -rf _build book/chapters data/cache .pytest_cache .ruff_cache
	find book/exercises -mindepth 2 -maxdepth 2 ! -name answers.json -exec rm -rf {} +  # keeps the answer keys
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
