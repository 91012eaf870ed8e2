# Two commands matter: `make serve` runs Tidings, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test install browser lint bench bench-scaled clean

$(BIN)/tidings: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(BIN)/tidings

install: $(BIN)/tidings

serve: install
	TIDINGS_DEMO=1 $(BIN)/tidings serve --host 127.0.0.1 --port 8000

# Browser tests drive Debian's Chromium; Playwright's own browser download is not used.
# Node checks that the served scripts parse.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v node >/dev/null 2>&1 || { \
	  echo "Installing Debian's nodejs to check the served scripts"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; }

test: install browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# wrk (a C load generator) drives the HTTP scenarios, so the client is not the bottleneck;
# Nchan (nginx's pub/sub module) is the fanout scenario's baseline.
bench: install
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "Installing Debian's wrk for the benchmarks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	@test -e /usr/lib/nginx/modules/ngx_nchan_module.so || { \
	  echo "Installing Debian's nginx-light and libnginx-mod-nchan for the fanout baseline"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null; }
	$(BIN)/python -m bench $(BENCH_ARGS)

# Accepted and delivered per second: the embedded default beside deploy/Procfile's scaled set
# (needs PostgreSQL, RabbitMQ and Redis; see docs/deployment.md).
bench-scaled: install
	$(BIN)/python -m bench.scaled $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache tidings.db tidings.db-wal tidings.db-shm
