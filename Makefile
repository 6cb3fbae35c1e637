# Medical Imaging with Deep Learning — the two commands are `make course` and `make test`.
# Both create or refresh .venv from the pinned requirements first; nothing else is needed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader calls `alembic` and `jupyter` from PATH, so the venv's bin must come first.
export PATH := $(abspath $(BIN)):$(PATH)
# Quick mode for everything make runs, unless the caller asks otherwise.
export COURSE_MODE ?= quick
export MPLBACKEND ?= Agg
export PYTHONHASHSEED ?= 0
# One thread per process in quick mode: quick mode's small CPU nets train faster on one thread than on two, and
# make test runs two workers (the grader two kernels beside them) whose OpenMP threads otherwise spin against each
# other: a training loop of 1.5 s alone took 11-19 s with two such processes side by side, 1.1 s on one thread each
# (benchmarks/bench_threads.py). Set OMP_NUM_THREADS yourself to override.
ifeq ($(COURSE_MODE),quick)
export OMP_NUM_THREADS ?= 1
endif

ASSIGNMENTS := $(notdir $(wildcard solutions/*))
ITK_SLICE := /usr/share/doc/insighttoolkit5-examples/examples/Data/BrainT1Slice.png

.PHONY: venv sandbox browser instructor-lab course test test-fast lint release grade grade-me clean help

help:
	@echo "make course   execute every notebook (quick mode) into build/, with results.json/.md"
	@echo "make test     unit tests, notebooks, autograder harness"
	@echo "make release  regenerate assignments/ from solutions/"
	@echo "make grade    autograde submitted/ (or FROM=dir) in JOBS workers, FORCE=1 regrades; grades.csv + summary"
	@echo "make grade-me grade your own notebooks (NB=path ...; default those in assignments/) as student 'me'"
	@echo "make lint     ruff"
	@echo "make instructor-lab  JupyterLab with nbgrader's instructor tools (formgrader, Create Assignment)"

$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	@# one real brain slice in two MRI contrasts (chapter 4), from Debian; optional: ch04a says so when it is absent
	@test -f $(ITK_SLICE) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq insighttoolkit5-examples >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq insighttoolkit5-examples >/dev/null 2>&1; }; }; } || \
		echo "note: apt-get install insighttoolkit5-examples for chapter 4's real PD/T1 slice (optional)"
	touch $(STAMP)

# configurable-http-proxy (npm), the proxy JupyterHub needs in the hub round-trip test; exact versions in
# course_lib/grading/hub/package-lock.json. Without npm the test is skipped (outside CI) and says why.
HUB_PROXY := course_lib/grading/hub/node_modules/.bin/configurable-http-proxy

$(HUB_PROXY): course_lib/grading/hub/package.json course_lib/grading/hub/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix course_lib/grading/hub --no-audit --no-fund --loglevel=error && touch $(HUB_PROXY); \
	else echo "npm not found: the JupyterHub round-trip test will be skipped"; fi

# The grader's sandbox (bubblewrap, a system package): installed when make runs as root with apt-get. Without it
# `make grade` refuses to grade (GRADER_SANDBOX=off grades unisolated on purpose), and the tests of that isolation are
# skipped, each saying why.
sandbox:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null 2>&1 && \
		    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; }; } || \
		echo "note: bubblewrap is not installed and make cannot install it (needs root and apt-get): make grade" \
		     "refuses to grade unisolated, and its isolation tests are skipped. Install it with: apt-get install bubblewrap"

# Debian's chromium, the browser tests/browser drive through playwright (pinned in requirements.txt; playwright's own
# browser download needs the internet): installed when make runs as root with apt-get, for `make test` (the course
# itself needs no browser). Without it the browser tests are skipped, each saying why (failed under .ci/run).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null 2>&1 && \
		    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }; }; } || \
		echo "note: chromium is not installed and make cannot install it (needs root and apt-get): the browser" \
		     "tests are skipped. Install it with: apt-get install chromium"

# The course's two JupyterLab roles, the way nbgrader's installation guide ("Disabling extensions") sets them: .venv's
# own JupyterLab is the student's (nbgrader's Validate button and Assignments list; the formgrader, course list and
# Create Assignment panel disabled, their server parts too), and `make instructor-lab` adds
# course_lib/grading/instructor to JUPYTER_CONFIG_PATH, which Jupyter reads before .venv's config, re-enabling them.
# Neither role shows the "notified about official Jupyter news?" pop-up (the announcements plugin is disabled).
STUDENT_LAB := $(VENV)/etc/jupyter/labconfig/page_config.json
INSTRUCTOR_ONLY_LAB := @jupyter/nbgrader:create-assignment @jupyter/nbgrader:formgrader @jupyter/nbgrader:course-list

$(STUDENT_LAB): $(STAMP)
	$(BIN)/jupyter labextension disable --level=sys_prefix $(INSTRUCTOR_ONLY_LAB) \
		@jupyterlab/apputils-extension:announcements >/dev/null
	@# locked: a student cannot switch them back on in JupyterLab's plugin manager
	$(BIN)/jupyter labextension lock --level=sys_prefix $(INSTRUCTOR_ONLY_LAB) >/dev/null
	$(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader \
		nbgrader.server_extensions.course_list >/dev/null 2>&1

instructor-lab: venv
	JUPYTER_CONFIG_PATH="$(abspath course_lib/grading/instructor)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/jupyter lab

venv: $(STAMP) $(STUDENT_LAB) $(HUB_PROXY) sandbox

# Quick mode runs as many notebooks at a time as there are cores, one torch thread each (OMP_NUM_THREADS above);
# full mode one at a time (one GPU).
COURSE_JOBS ?= $(if $(filter quick,$(COURSE_MODE)),$(shell nproc 2>/dev/null || echo 1),1)
course: venv
	$(BIN)/python -m course_lib.tools.run_course --out build --jobs $(COURSE_JOBS) notebooks/*.ipynb

# Both cores: tests that share one graded batch or hub run in one worker (xdist_group), the rest spread out.
TEST_JOBS ?= 2
test: venv browser
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup --durations=20

# The browser tests alone (JupyterLab driven by headless chromium; `make test` runs them too).
test-browser: venv browser
	$(BIN)/python -m pytest -o addopts="-ra --strict-markers" tests/browser

test-fast: venv
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup -m "not slow"

lint: venv
	$(BIN)/ruff check .

release: venv
	@for a in $(ASSIGNMENTS); do \
		$(BIN)/nbgrader generate_assignment "$$a" --force --no-db || exit 1; \
	done

# JOBS (default: the number of cores), FORCE=1 (regrade everything), FROM=<folder of student folders>.
# Without bubblewrap it refuses; GRADER_SANDBOX=off grades unisolated, on purpose (the summary says so).
grade: venv
	$(BIN)/python -m course_lib.grading.grade_all $(if $(JOBS),--jobs $(JOBS)) $(if $(filter-out 0,$(FORCE)),--force) \
		$(if $(FROM),--from "$(FROM)")

# Self-learners: grade your own copy; reads assignments/ (or NB=...) and never writes there.
grade-me: venv
	$(BIN)/python -m course_lib.grading.grade_all --force $(if $(JOBS),--jobs $(JOBS)) --self $(NB)

clean:
	rm -rf build .pytest_cache .ruff_cache .grading
