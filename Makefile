# The two commands of the README:  make bench  |  make test
VENV   ?= .venv
PY     := $(VENV)/bin/python
# tcmalloc roughly halves training time on CPU (see README, Performance); used when installed.
TCMALLOC := $(firstword $(wildcard /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4))

.PHONY: bench test dry-run clean-venv

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Install a compatible torch first when none is present: on CPU-only machines this
	# picks the local CPU build (torch==2.13.0) instead of pulling CUDA packages.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==2.13.0" || $(PY) -m pip install --quiet "torch>=2.4"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

bench: $(VENV)/.installed
	LD_PRELOAD=$(TCMALLOC) $(VENV)/bin/snakemake --cores 8 all

test: $(VENV)/.installed
	$(VENV)/bin/pytest

dry-run: $(VENV)/.installed
	$(VENV)/bin/snakemake -n --cores 8 all

clean-venv:
	rm -rf $(VENV)
