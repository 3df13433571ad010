# The two commands a newcomer runs: `make run` and `make test`.
# Both set themselves up: Debian packages (when missing), a virtualenv in .venv, the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ./data
# Debian packages: what the server needs to run, and what the test suite needs on top.
# build-essential, python3-dev: pip compiles the packet plane's C extension (rtc/_fastpath.c)
BUILD_APT := build-essential python3-dev
RUN_APT := fonts-noto-cjk $(BUILD_APT)
TEST_APT := chromium firefox-esr redis-server postgresql ffmpeg poppler-utils libnss3-tools qpdf fonts-noto-cjk coturn nftables

.PHONY: run test setup setup-test lint clean bench

$(BIN)/.installed: pyproject.toml rtc/_fastpath.c rtc/_remb.c rtc/_reception.c rtc/_ingress.c rtc/_fastpath.h
	@bash scripts/ensure-python.sh $(PYTHON)
	@bash scripts/ensure-apt.sh $(BUILD_APT)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(BIN)/.installed
	@bash scripts/ensure-apt.sh $(RUN_APT)

setup-test: $(BIN)/.installed
	@bash scripts/ensure-apt.sh $(RUN_APT) $(TEST_APT)

run: setup
	$(BIN)/tiaojie serve --data $(DATA)

test: setup-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n 2 --dist loadgroup

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
