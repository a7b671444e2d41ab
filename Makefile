# Two entry points: `make demo` (the main job on built-in data) and `make test`.
# Both create .venv if missing and install the project into it.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SHARED ?= ../shared/data
ZH_ANALOGIES := $(wildcard $(SHARED)/zh/analogy/*.txt)

.PHONY: demo test lint docs install clean

$(PY):
	python3 -m venv $(VENV)

# torch is pinned to the CPU build first: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/warmstart demo --out runs/demo $(foreach f,$(ZH_ANALOGIES),--analogies $(f))

# The docs site (mkdocs.yml, docs/) into site/; --strict: a warning (a broken link, a docstring
# the API pages cannot render) fails the build. Nothing is fetched: the theme's fonts are off.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# mypy checks what [tool.mypy] in pyproject.toml names: src/warmstart and benchmarks/.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

# The tuning tests share a study through a real PostgreSQL server, started here on localhost
# (tests/postgres_server.sh) and removed afterwards. The explorer page's test drives Debian's
# chromium (never a browser download), installed here when missing and we are root. Without
# either, its test is skipped, except under CI, where it must run.
test: lint
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& echo "installing chromium from Debian's packages" >&2 \
		&& { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 \
		     || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; }; }; } \
		|| echo "warning: no chromium (apt-get install chromium); the browser test will be skipped" >&2
	@pg=$$(mktemp -d /tmp/warmstart-pg.XXXXXX); \
	if url=$$(tests/postgres_server.sh start $$pg); then export WARMSTART_TEST_POSTGRES=$$url; \
	else echo "warning: no PostgreSQL server; its test will be skipped" >&2; fi; \
	$(VENV)/bin/pytest -q; rc=$$?; \
	tests/postgres_server.sh stop $$pg; exit $$rc

clean:
	rm -rf runs .pytest_cache .ruff_cache .mypy_cache
