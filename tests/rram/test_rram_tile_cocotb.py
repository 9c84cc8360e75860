"""cocotb tests of the emitted RRAM tile on Verilator and Icarus, over a config matrix.

`make test` runs a covering subset of small tiles (cell_bits 1/2/4, OU 9×8 and 16×16, lossless and clipping ADC,
differential and offset encoding, signed and unsigned inputs, DAC 1 and 2, 1, 2 and 4 crossbars, adcs_per_xbar 1, 3
and ou_cols, faults and noise); `make test-full` (SPARSEGEN_FULL=1) runs the whole product of those axes.

Every error code of ``hw.rram.beats.ERROR_CODES`` is produced by the tile in `make test`: each run's bad-input test
reads back from STATUS every code its config can produce (all but BAD_CELL when every address field is full, i.e.
the tile's dimensions are powers of two) and reports them, ``test_rram_tile`` asserts that set, and
``test_every_error_code_is_reached`` that the configs of `make test` can produce every code between them.
"""

import itertools
import json
import os

import pytest

from gen.rram.config import RramTileConfig
from hw.rram.beats import ERROR_CODES
from sim.common.runner import SIMULATORS, run_design
from sim.rram.driver import cell_room


_ABBREV = {"dac_bits": "dac", "stuck_sa0": "sa0_", "stuck_sa1": "sa1_", "pulse_error": "pe", "read_noise": "rn",
           "xbar_rows": "rows", "xbar_cols": "cols", "n_xbars": "x", "adcs_per_xbar": "a"}


def _config(cell_bits, ou, lossless, encoding, signed, **extra):
    rows, cols = ou
    probe = RramTileConfig(xbar_rows=32, xbar_cols=32, cell_bits=cell_bits, ou_rows=rows, ou_cols=cols, adc_bits=1,
                           dac_bits=extra.get("dac_bits", 1))
    adc = probe.lossless_adc_bits if lossless else max(1, probe.lossless_adc_bits - 2)
    fields = dict(xbar_rows=32, xbar_cols=32, n_xbars=2, cell_bits=cell_bits, ou_rows=rows, ou_cols=cols,
                  adc_bits=adc, encoding=encoding, input_signed=signed, input_bits=4,
                  weight_bits=6, max_inputs=40, max_outputs=8, fault_depth=4, seed=11)
    fields.update(extra)
    name = (f"rram_t_c{cell_bits}_ou{rows}x{cols}_{'ll' if lossless else 'lossy'}_{encoding[:4]}_"
            f"{'s' if signed else 'u'}" + "".join(f"_{_ABBREV[k]}{v}".replace(".", "p") for k, v in extra.items()))
    return RramTileConfig(name=name[:64], **fields)


CONFIGS = [
    # ideal, lossless: results must equal x @ W; 30 wordlines, so a program beat can address a row beyond them;
    # one ADC per crossbar
    _config(1, (9, 8), True, "differential", True, xbar_rows=30, adcs_per_xbar=1),
    # clipping ADC, 2-bit DAC, stuck cells, pulse errors and read noise; 4 crossbars
    _config(2, (16, 16), False, "offset", False, dac_bits=2, stuck_sa0=0.02, stuck_sa1=0.02, pulse_error=12000,
            read_noise=1),
    # 4-bit cells, stuck cells only (the fault log is exactly the stuck cells off target), small fault FIFO;
    # four 16 × 16 crossbars, 3 ADCs of 8
    _config(4, (9, 8), True, "differential", False, stuck_sa0=0.03, stuck_sa1=0.03, n_xbars=4, adcs_per_xbar=3,
            xbar_rows=16, xbar_cols=16),
]
if os.environ.get("SPARSEGEN_FULL"):
    # the product of the original axes (48 tiles, each with stuck cells); DAC, crossbar count and ADC sharing cycle
    # through their values along it, so each value meets every other axis
    CONFIGS += [_config(c, ou, ll, enc, s, stuck_sa1=0.02, dac_bits=(1, 2)[i % 2], n_xbars=(1, 2, 4)[i % 3],
                        **({"adcs_per_xbar": 1} if i % 4 >= 2 else {}))
                for i, (c, ou, ll, enc, s) in enumerate(itertools.product(
                    (1, 2, 4), ((9, 8), (16, 16)), (True, False), ("differential", "offset"), (True, False)))]
CONFIGS = {cfg.top: cfg for cfg in CONFIGS}


# the first config's Verilator build is the slowest of `make test` (150–240 s on 2 cores): `make test` runs it on
# Icarus (the same checks, 70 s) and `make test-full` on both; the other configs run on both simulators
_CASES = [pytest.param(sim, name, id=f"{sim}-{name}",
                       marks=[pytest.mark.slow] if sim == "verilator" and name == next(iter(CONFIGS)) else [])
          for name in CONFIGS for sim in SIMULATORS]


@pytest.mark.parametrize("sim, name", _CASES)
def test_rram_tile(sim, name, seed, tmp_path):
    cfg = CONFIGS[name]
    codes = tmp_path / "error_codes.json"
    run_design(cfg, "sim.rram.cocotb_tile", sim, seed=seed, knobs={"error_codes": codes})
    assert set(json.loads(codes.read_text())) == _reachable_codes(cfg)


def _reachable_codes(cfg):
    return {code for name, code in ERROR_CODES.items() if name != "BAD_CELL" or cell_room(cfg)}


def test_every_error_code_is_reached():
    """Between them, the configs of `make test` produce every error code (each run asserts its own set above)."""
    reached = set().union(*(_reachable_codes(cfg) for cfg in CONFIGS.values()))
    assert reached == set(ERROR_CODES.values()), f"no config of `make test` reaches {set(ERROR_CODES.values()) - reached}"
