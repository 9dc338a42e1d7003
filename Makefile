# The two set-up commands of the README:  make bench  |  make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
# tcmalloc speeds up CPU training (docs/running.md, Speed); preloaded when installed. `make tcmalloc`
# installs it (Debian/Ubuntu, as root); without it `make bench` says so and runs with glibc's allocator.
TCMALLOC := $(firstword $(wildcard /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4))

.PHONY: bench test dry-run test-slurm clean-venv tcmalloc

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Install a compatible torch first when none is present: on CPU-only machines this
	# picks the local CPU build (torch==2.13.0) instead of pulling CUDA packages.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==2.13.0" || $(PY) -m pip install --quiet "torch>=2.4"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

bench: $(VENV)/.installed
	@[ -n "$(TCMALLOC)" ] || echo "note: tcmalloc not found, running with glibc malloc (tuned by the methods);" \
		"for the allocator gain run 'make tcmalloc' as root (apt-get install libtcmalloc-minimal4), see docs/running.md"
	LD_PRELOAD=$(TCMALLOC) $(VENV)/bin/snakemake --cores 8 all

# Debian's tcmalloc (the allocator `make bench` preloads); needs root and apt-get.
tcmalloc:
	@[ -n "$(TCMALLOC)" ] && echo "tcmalloc present: $(TCMALLOC)" || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y libtcmalloc-minimal4 || \
		  { echo "install tcmalloc as root: apt-get install libtcmalloc-minimal4 (Fedora: dnf install gperftools-libs;" \
		         "macOS: not needed)"; exit 1; }; }

# The checks of CONTRIBUTING.md: the linter, then every test.
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

dry-run: $(VENV)/.installed
	$(VENV)/bin/snakemake -n --cores 8 all

# Not part of `make test`: as root, installs Debian's SLURM packages, starts a single-node
# cluster on localhost and runs the smoke suite through `--executor slurm` and locally, to
# the same metrics (tests/slurm/run_slurm_test.sh). The plugin is the `slurm` extra of pyproject.toml.
test-slurm: $(VENV)/.installed
	$(PY) -c "import snakemake_executor_plugin_slurm" 2>/dev/null || $(PY) -m pip install --quiet "snakemake-executor-plugin-slurm>=2.8"
	PY=$(abspath $(PY)) tests/slurm/run_slurm_test.sh

clean-venv:
	rm -rf $(VENV)
