# commune-monitor: `make demo` and `make test` work on a fresh Debian machine (run as root or with sudo).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := mosquitto mosquitto-clients influxdb iputils-ping iproute2 iptables openssl systemd chromium curl sqlite3 \
	libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils usb.ids strace smartmontools \
	pcscd vsmartcard-vpcd vsmartcard-vpicc libpcsclite-dev swig
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps system-deps bench-deps venv old-pythons demo test test-fast lint docs docs-refs bench clean \
	agent-binary agent-binary-old \
	known-ids known-ids-sources

help:
	@echo "make demo   install what is missing, start broker, InfluxDB, collector and a simulated province (commune-sim)"
	@echo "            with 35 days of its history; DEMO_ARGS='--days 4 --communes 02473,02536' for less"
	@echo "make test   install what is missing, lint and run every test against real services (TEST_WORKERS=3)"
	@echo "make test-fast  only the pure tests (pytest -m 'not services'): seconds, no service started"
	@echo "make lint   ruff and mypy --strict"
	@echo "make docs   build the documentation site (MkDocs Material, mkdocs build --strict) into build/site"
	@echo "make docs-refs  regenerate docs/en/reference/ from the code (config models, OpenAPI, wire contract)"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make known-ids  regenerate agent/peripherals/known_ids.csv from Debian's libsane1, libccid and usb.ids"
	@echo "make agent-binary  build dist/commune-agent, the single-file agent (PyInstaller; no Python needed on the PC)"
	@echo "make agent-binary-old  the same built in a Debian 11 userland (debootstrap): runs on glibc 2.31 and newer"

deps: system-deps venv

# Debian packages: installed only when a binary is missing, so repeated runs are fast.
system-deps:
	@missing=""; \
	for pair in mosquitto:mosquitto influxd:influxdb ping:iputils-ping ip:iproute2 iptables:iptables mosquitto_passwd:mosquitto openssl:openssl systemd-analyze:systemd chromium:chromium pdftotext:poppler-utils strace:strace smartctl:smartmontools pcscd:pcscd vicc:vsmartcard-vpicc swig:swig curl:curl sqlite3:sqlite3; do \
	  bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || missing="$$missing $$pkg"; \
	done; \
	/sbin/ldconfig -p | grep -q libpangoft2-1.0.so.0 || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	[ -f /usr/share/misc/usb.ids ] || missing="$$missing usb.ids"; \
	[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || missing="$$missing vsmartcard-vpcd"; \
	[ -f /usr/include/PCSC/winscard.h ] || missing="$$missing libpcsclite-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@# the packaged services are not needed: tests and demo start their own on loopback (pcscd in a namespace)
	@-$(SUDO) systemctl disable --now mosquitto influxdb >/dev/null 2>&1 || true

# The agent's known USB ids come from Debian's packages (docs/en/equipment.md): fetched with
# apt-get download (nothing installed) and unpacked under build/known-ids/root. Fetched again only
# when a package is missing; `make known-ids` fetches afresh, then regenerates the committed CSV.
KNOWN_IDS_DIR := build/known-ids
KNOWN_IDS_PACKAGES := libsane1 libccid usb.ids

known-ids-sources:
	@for pkg in $(KNOWN_IDS_PACKAGES); do ls $(KNOWN_IDS_DIR)/$${pkg}_*.deb >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  rm -rf $(KNOWN_IDS_DIR) && mkdir -p $(KNOWN_IDS_DIR) && cd $(KNOWN_IDS_DIR) && \
	  { apt-get download -qq $(KNOWN_IDS_PACKAGES) 2>/dev/null || { $(SUDO) apt-get update -qq && apt-get download -qq $(KNOWN_IDS_PACKAGES); }; } && \
	  for deb in *.deb; do dpkg -x "$$deb" root; done; \
	fi

known-ids: venv
	rm -rf $(KNOWN_IDS_DIR)
	$(MAKE) known-ids-sources
	$(PY) -m devtools.known_ids $(KNOWN_IDS_DIR) agent/peripherals/known_ids.csv

# node_exporter is only the reference the agent's footprint is compared with (bench/agent_footprint.py).
bench-deps:
	@if [ ! -x /usr/bin/prometheus-node-exporter ]; then \
	  echo "installing Debian package: prometheus-node-exporter"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq prometheus-node-exporter >/dev/null; \
	fi
	@# the benchmark starts its own on a free loopback port; the packaged service would hold 9100
	@-$(SUDO) systemctl disable --now prometheus-node-exporter >/dev/null 2>&1 || true

venv: $(VENV)/.stamp

$(VENV)/.stamp: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[agent,collector,dev,pcsc]'
	@touch $@

# The agent runs on Python 3.8+ (Ubuntu 20.04, Debian 11): one venv per old Python with only the
# agent's extra (and pytest), for tests/test_old_pythons.py. The interpreters come from pyenv
# (or python3.X on PATH); a venv is rebuilt only when pyproject.toml changes.
OLD_PYTHONS := 3.8 3.9
old-pythons: $(foreach v,$(OLD_PYTHONS),.venv-py$(v)/.stamp)

.venv-py%/.stamp: pyproject.toml
	@python=$$(pyenv prefix $* 2>/dev/null)/bin/python$*; \
	[ -x "$$python" ] || python=$$(command -v python$*) || { echo "Python $* is missing: install it with pyenv (pyenv install $*) or apt-get (python$*)" >&2; exit 1; }; \
	rm -rf .venv-py$* && "$$python" -m venv .venv-py$* && \
	.venv-py$*/bin/python -m pip install -q --upgrade pip && \
	.venv-py$*/bin/python -m pip install -q -e '.[agent]' 'pytest>=8,<8.4'
	@touch $@

# The single-file agent (docs/en/agent.md, "Single-file agent"). PyInstaller runs in a build venv of its own
# (extras agent + binary), so the dev venv stays as it is; the binary is rebuilt only when the
# agent's sources, its data file, the spec or pyproject.toml change. AGENT_BINARY_PYTHON picks the
# Python it bundles (the glibc it needs comes from that Python's build and the system's libraries).
AGENT_BINARY_PYTHON ?= $(PYTHON)
BINARY_VENV := build/agent-binary/venv
AGENT_BINARY_INPUTS := $(shell find agent common -name '*.py' -o -name '*.csv') \
	packaging/commune-agent.spec packaging/commune_agent_entry.py

agent-binary: dist/commune-agent

$(BINARY_VENV)/.stamp: pyproject.toml
	@[ -x $(BINARY_VENV)/bin/python ] || $(AGENT_BINARY_PYTHON) -m venv $(BINARY_VENV)
	$(BINARY_VENV)/bin/python -m pip install -q --upgrade pip
	$(BINARY_VENV)/bin/python -m pip install -q -e '.[agent,binary]'
	@touch $@

dist/commune-agent: $(BINARY_VENV)/.stamp $(AGENT_BINARY_INPUTS)
	$(BINARY_VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath dist \
	  --workpath build/agent-binary/work packaging/commune-agent.spec
	@touch $@
	@$(BINARY_VENV)/bin/python -m devtools.glibc_floor dist/commune-agent | tail -1

# The same binary built inside Debian 11's userland (debootstrap, once, kept under build/), so it
# needs only glibc 2.31 (Ubuntu 20.04, Debian 11) and bundles Debian's Python 3.9: dist/bullseye/.
# Root, network to Debian's and PyPI's mirrors; not part of make test (docs/en/agent.md, "Single-file agent").
OLD_DEBIAN ?= bullseye
agent-binary-old: $(BINARY_VENV)/.stamp
	@command -v debootstrap >/dev/null || { echo "installing Debian package: debootstrap"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq debootstrap >/dev/null; }
	$(SUDO) sh packaging/build-in-old-debian.sh $(OLD_DEBIAN)
	@$(BINARY_VENV)/bin/python -m devtools.glibc_floor dist/$(OLD_DEBIAN)/commune-agent | tail -1

lint: venv
	$(VENV)/bin/ruff check agent collector common devtools tests bench packaging
	$(VENV)/bin/ruff format --check agent collector common devtools tests bench packaging
	$(VENV)/bin/mypy
	@# the agent's Windows-only modules (agent/windows/, peripherals/wmi.py) and its platform guards
	$(VENV)/bin/mypy --platform win32 agent common

# Most service tests wait on real processes rather than compute, so three workers (one file each at a
# time, --dist loadfile) finish in about half the wall time on 2 cores. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 3
test: deps known-ids-sources lint docs old-pythons agent-binary
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile

# The documentation site (docs/, mkdocs.yml): --strict turns a broken link, a missing anchor or a
# page left out of the nav into a failure. It needs nothing from the network (theme font: false).
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The generated references under docs/en/reference/ (tests/test_docs_refs.py fails when they drift).
docs-refs: venv
	$(PY) -m devtools.docs_refs

# The pure tier: no Debian service package needed, nothing started (tests/tiers.py enforces it).
test-fast: venv known-ids-sources
	$(VENV)/bin/pytest -q -m "not services"

# The simulated province runs as commune-sim (devtools/simulate/cli.py, a console script of the venv).
DEMO_ARGS ?=
demo: deps
	$(PY) -m devtools.demo $(DEMO_ARGS)

bench: deps bench-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .venv-py3.* build dist .demo .pytest_cache .mypy_cache .ruff_cache *.egg-info
