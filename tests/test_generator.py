"""Generator: deterministic Verilog, and a manifest that describes the emitted ports and beat formats."""

import math
import re

import pytest

from gen import SystolicConfig, generate_verilog
from hw.bits import leaves
from hw.systolic.beats import layouts

CONFIGS = [SystolicConfig(rows=2, cols=3, keep=2, block=4),
           SystolicConfig(rows=3, cols=2, keep=1, block=1, act_signed=False),
           SystolicConfig(rows=2, cols=2, keep=3, block=8, acc_bits=16, overflow="saturate", name="my_array")]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.top)
def test_same_config_gives_identical_verilog(cfg):
    first, second = generate_verilog(cfg), generate_verilog(cfg)
    assert first.verilog == second.verilog
    assert first.manifest == second.manifest
    assert "/work/" not in first.verilog and "src =" not in first.verilog, "source paths leaked into the output"


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.top)
def test_manifest_ports_match_verilog(cfg):
    art = generate_verilog(cfg)
    top_module = re.search(rf"module {re.escape(cfg.top)}\((.*?)\);(.*?)endmodule", art.verilog, re.S)
    assert top_module, f"no module {cfg.top} in the Verilog"
    declared = {name: (direction, int(msb) + 1 if msb else 1)
                for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);",
                                                       top_module.group(2), re.M)}
    manifest_ports = {p["name"]: (p["direction"] + "put", p["width"]) for p in art.manifest["ports"]}
    assert manifest_ports == declared
    assert all(p["meaning"] for p in art.manifest["ports"])


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.top)
def test_manifest_beats_follow_the_layouts(cfg):
    art = generate_verilog(cfg)
    widths = {p["name"]: p["width"] for p in art.manifest["ports"]}
    for name, layout in layouts(cfg).items():
        beat = art.manifest["streams"][name]["beat"]
        assert beat["width"] == layout.size == widths[f"{name}__payload"]
        assert sum(f["width"] for f in beat["element_fields"]) * math.prod(beat["dims"]) == layout.size
        assert len(leaves(layout)) == math.prod(beat["dims"]) * len(beat["element_fields"])
    assert art.manifest["config"] == cfg.to_dict()
    assert art.manifest["latency"]["result_cycles"] == cfg.rows + cfg.cols
    assert art.manifest["generator"]["version"]
