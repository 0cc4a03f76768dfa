# Two commands do everything on a fresh machine (see README):
#   make demo   set up .venv, serve the sample site on loopback, run the nightly flow into
#               data/warehouse.duckdb, print the run summary and an example query
#   make test   set up .venv, type-check (mypy) and run the whole test suite (what .ci/run calls)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WAREHOUSE ?= data/warehouse.duckdb
# What analysts read: the snapshot each run publishes, else the warehouse itself.
SNAPSHOT = $(basename $(WAREHOUSE)).snapshot.duckdb
READ_FROM = $(if $(wildcard $(SNAPSHOT)),$(SNAPSHOT),$(WAREHOUSE))
SOURCES ?= sources.yaml
N ?= 2000
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: demo test eval bench report export sql lake-demo lake-sql serve-sample deploy worker setup clean

setup: $(VENV)/.installed
	$(PY) scripts/compile_extractor.py

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip check
	touch $@

demo: setup
	WAREHOUSE=$(WAREHOUSE) SOURCES=$(SOURCES) PY=$(PY) scripts/demo.sh

test: setup
	scripts/install-browser.sh
	scripts/install-postgres.sh
	$(PY) -m mypy
	GOVETL_TEST_POSTGRES=required $(PY) -m pytest

eval: setup
	$(PY) -m evaluation

# make bench [N=10000]: synthetic corpus on loopback, full/no-op/reprocess runs; writes BENCHMARKS.md
bench: setup
	$(PY) -m bench.run --n $(N) --out BENCHMARKS.md

# every table and main view as Parquet under build/parquet, and the indicator table as
# build/parquet/indicator_by_region_year.xlsx (see warehouse/README.md)
export: setup
	$(PY) -m warehouse.analyst.export --warehouse $(READ_FROM) --out build/parquet

# the DuckDB CLI (duckdb-cli, in the lock) on what analysts read, read-only: make sql [WAREHOUSE=...]
sql: setup
	@test -e $(READ_FROM) || { echo "no warehouse at $(READ_FROM): make demo writes one" >&2; exit 1; }
	@$(PY) -m warehouse.backend.upgrade --check $(READ_FROM)
	$(VENV)/bin/duckdb -readonly $(READ_FROM)

# the demo into a DuckLake (README "Running on DuckLake"): a PostgreSQL of its own for the catalog
# (build/lake-demo, stopped at the end), the nightly flow twice, the second run writing nothing
lake-demo: setup
	scripts/install-postgres.sh
	PY=$(PY) SOURCES=$(SOURCES) scripts/lake_demo.sh

# the DuckDB CLI on a lake, read-only: make lake-sql [LAKE='ducklake:postgres:<dsn>'] (default: make lake-demo's)
lake-sql: setup
	@PY=$(PY) LAKE="$(LAKE)" scripts/lake_sql.sh

# charts of key indicators by region and year from $(WAREHOUSE) (its snapshot if present):
# build/report/index.html + one PNG per chart (see analysis/README.md)
report: setup
	$(PY) -m analysis.report --warehouse $(WAREHOUSE) --out build/report

serve-sample: setup
	$(PY) -m sample_site serve --port 8765

deploy: setup
	$(VENV)/bin/prefect work-pool create govetl-process --type process --overwrite
	$(VENV)/bin/prefect --no-prompt deploy --all

worker: setup
	$(VENV)/bin/prefect worker start --pool govetl-process

clean:
	rm -rf $(VENV) build .pytest_cache
