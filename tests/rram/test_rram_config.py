"""RramTileConfig: validation messages, derived values, presets, and the generator's manifest."""

import dataclasses
import re

import numpy as np
import pytest

from gen import generate_verilog
from gen.config import list_presets, load_config
from gen.rram.config import RramTileConfig
from hw.rram import beats
from hw.formats.mapping import CrossbarGeometry
from hw.formats.mvm import lossless_adc_bits


def test_presets():
    names = list_presets("rram")
    assert {"rram_128x128_c2_ou9x8_adc5", "rram_64x64_c1"} <= set(names)
    big = load_config("rram_128x128_c2_ou9x8_adc5")
    assert (big.xbar_rows, big.xbar_cols, big.cell_bits, big.ou_rows, big.ou_cols, big.adc_bits) == (128, 128, 2, 9, 8, 5)
    assert load_config("rram_64x64_c1").cell_bits == 1
    for name in names:
        assert load_config(name).top == name
        assert load_config(name, {"crossbar": "external"}).top == name + "_ctl"


def test_external_crossbar_tile_exposes_the_crossbar_streams():
    """The digital part alone: no model inside, each crossbar's cmd/rsp streams are ports (an array, one element
    per crossbar) of a one-crossbar model's widths."""
    from hw.rram.crossbar import CrossbarModel
    from gen.rram.verilog import build

    cfg = load_config("rram_128x128_c2_ou9x8_adc5")
    inside, outside = build(cfg), build(dataclasses.replace(cfg, crossbar="external"))
    assert len(inside.xbars) == cfg.n_xbars == 2 and outside.xbars == []
    assert "xbar_cmd" not in inside.signature.members
    model = CrossbarModel(n_xbars=1, xbar_rows=cfg.xbar_rows, xbar_cols=cfg.xbar_cols,
                          cell_bits=cfg.cell_bits, ou_rows=cfg.ou_rows, ou_cols=cfg.ou_cols, dac_bits=cfg.dac_bits,
                          adc_bits=cfg.adc_bits)
    for name, member in (("xbar_cmd", "cmd"), ("xbar_rsp", "rsp")):
        port = outside.signature.members[name]
        assert port.dimensions == (cfg.n_xbars,)
        assert port.signature == model.signature.members[member].signature.flip()


@pytest.mark.parametrize("fields,pattern", [
    ({"cell_bits": 3}, r"RramTileConfig.cell_bits = 3 is not allowed: allowed 1, 2, 4"),
    ({"dac_bits": 4}, r"RramTileConfig.dac_bits = 4 is not allowed: allowed 1, 2"),
    ({"ou_rows": 200}, r"RramTileConfig.ou_rows = 200 is out of range: allowed 1 … 64 \(min\(64, xbar_rows\)\)"),
    ({"xbar_cols": 16, "ou_cols": 17}, r"RramTileConfig.ou_cols = 17 is out of range: allowed 1 … 16 \(min\(64, xbar_cols\)\)"),
    ({"adc_bits": 0}, r"RramTileConfig.adc_bits = 0 is out of range: allowed 1 … 16"),
    ({"encoding": "twos"}, r"RramTileConfig.encoding = 'twos' is not allowed: allowed 'differential', 'offset'"),
    ({"input_bits": 1}, r"RramTileConfig.input_bits = 1 is out of range: allowed 2 \(signed inputs need a sign bit\) … 16"),
    ({"max_ous": 10**6}, r"RramTileConfig.max_ous = 1000000 is out of range: allowed 1 … 240 \(n_xbars·row_groups·col_groups"),
    ({"pulse_error": 70000}, r"RramTileConfig.pulse_error = 70000 is out of range: allowed 0 … 65536"),
    ({"stuck_sa0": 0.7, "stuck_sa1": 0.5}, r"RramTileConfig.stuck_sa1 = 0.5 is out of range: allowed 0.0 … 0.3"),
    ({"max_iters": 0}, r"RramTileConfig.max_iters = 0 is out of range: allowed 1 … 255"),
    ({"max_inputs": 70000}, r"RramTileConfig.max_inputs = 70000 is out of range: allowed 1 … 65536"),
    ({"name": "module"}, r"RramTileConfig.name = 'module' is a Verilog keyword"),
    ({"crossbar": "analog"}, r"RramTileConfig.crossbar = 'analog' is not allowed: allowed 'model', 'external'"),
])
def test_bad_values_name_field_value_and_range(fields, pattern):
    with pytest.raises(ValueError, match=pattern):
        RramTileConfig(**fields)


@pytest.mark.parametrize("ou_rows,cell_bits,dac_bits", [(9, 2, 1), (16, 2, 1), (8, 1, 1), (9, 4, 2), (1, 1, 1)])
def test_lossless_adc_bits(ou_rows, cell_bits, dac_bits):
    cfg = RramTileConfig(ou_rows=ou_rows, cell_bits=cell_bits, dac_bits=dac_bits, adc_bits=4)
    assert cfg.lossless_adc_bits == lossless_adc_bits(ou_rows, cell_bits, dac_bits)
    assert cfg.adc_clips == (4 < cfg.lossless_adc_bits)


def test_derived_values():
    cfg = RramTileConfig(xbar_rows=128, xbar_cols=128, n_xbars=2, cell_bits=2, ou_rows=9, ou_cols=8, adc_bits=5)
    assert (cfg.row_groups, cfg.col_groups, cfg.ou_table_depth) == (15, 16, 480)
    assert cfg.columns_per_output == 8 and cfg.output_capacity == 32 and cfg.input_capacity == 256
    assert cfg.lossless_adc_bits == 5 and not cfg.adc_clips
    assert cfg.n_planes == 8
    assert cfg.geometry == CrossbarGeometry(xbar_rows=128, xbar_cols=128, ou_rows=9, ou_cols=8, cell_bits=2)
    # The accumulator holds K · 2**input_bits · 2**weight_bits in magnitude.
    assert cfg.acc_bits == (256 << 16).bit_length() + 1
    assert RramTileConfig.from_dict(cfg.to_dict()) == cfg
    assert load_config("rram_64x64_c1", overrides=["adc_bits=3"]).adc_clips


def test_stuck_cells_are_seeded():
    cfg = RramTileConfig(xbar_rows=16, xbar_cols=16, ou_rows=4, ou_cols=4, adc_bits=4, stuck_sa0=0.1, stuck_sa1=0.1)
    cells = cfg.stuck_cells()
    assert cells == cfg.stuck_cells() and 20 < len(cells) < 90
    assert {level for *_, level in cells} == {0, 3}
    assert RramTileConfig(xbar_rows=16, xbar_cols=16, ou_rows=4, ou_cols=4, adc_bits=4).stuck_cells() == ()


def test_manifest_reports_adc_resolution_and_clipping():
    small = RramTileConfig(xbar_rows=16, xbar_cols=16, ou_rows=9, ou_cols=8, cell_bits=2, adc_bits=3)
    art = generate_verilog(small)
    adc = art.manifest["adc"]
    assert adc["lossless_adc_bits"] == 5 and adc["clips"] is True
    assert "Clipping is part of the design, not a bug." in adc["note"]
    lossless = generate_verilog(small.__class__(**{**small.to_dict(), "adc_bits": 5})).manifest["adc"]
    assert lossless["clips"] is False and "never clip" in lossless["note"]
    # Every port is described and matches the Verilog; every stream's beat width is its layout's.
    top = re.search(rf"module {small.top}\((.*?)\);(.*?)endmodule", art.verilog, re.S).group(2)
    declared = {name: int(msb) + 1 if msb else 1
                for _, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", top, re.M)}
    assert {p["name"]: p["width"] for p in art.manifest["ports"]} == declared
    for name, layout in beats.layouts(beats.params_of(small)).items():
        assert art.manifest["streams"][name]["beat"]["width"] == layout.size == declared[f"{name}__payload"]
    assert set(art.manifest["registers"]) == {str(a) for a in beats.REGISTERS}


def test_bounds_are_the_crossbar_models():
    """The config allows exactly the seeds and pulse-error rates the crossbar model takes."""
    from hw.rram.crossbar import PULSE_ONE
    from hw.rram.lfsr import MAX_SEED

    cfg = RramTileConfig(seed=MAX_SEED, pulse_error=PULSE_ONE)
    assert (cfg.seed, cfg.pulse_error) == (MAX_SEED, PULSE_ONE)
    for field, value in (("seed", MAX_SEED + 1), ("pulse_error", PULSE_ONE + 1)):
        with pytest.raises(ValueError, match=f"RramTileConfig.{field} = {value} is out of range"):
            RramTileConfig(**{field: value})


def test_numpy_scalars_are_stored_as_python_values():
    cfg = RramTileConfig(xbar_rows=np.int64(64), input_signed=np.bool_(False), stuck_sa0=np.float32(0.25))
    assert (type(cfg.xbar_rows), type(cfg.input_signed), type(cfg.stuck_sa0)) == (int, bool, float)
    assert cfg == RramTileConfig(xbar_rows=64, input_signed=False, stuck_sa0=0.25)
    with pytest.raises(TypeError, match=r"RramTileConfig.n_xbars = 2.0 is a float, not an integer: allowed 1 … 64"):
        RramTileConfig(n_xbars=2.0)
