"""GemmConfig validation and presets, the generator's manifest for the engine, and `python -m gen perf`."""

import dataclasses
import re

import pytest

from gen.cli import main
from gen.config import list_presets, load_config
from gen.gemm.cli import dense_twin
from gen.config import ARRAY_FIELDS
from gen.gemm.config import GemmConfig
from gen.systolic.config import SystolicConfig
from gen.gemm import perf


@pytest.mark.parametrize("field,value,match", [
    ("dataflow", "xy", r"GemmConfig.dataflow = 'xy' is not allowed: allowed 'ws', 'os'"),
    ("max_m", 0, r"GemmConfig.max_m = 0 is out of range: allowed 1 … 65536"),
    ("max_k", 2**20 + 1, r"GemmConfig.max_k = 1048577 is out of range"),
    ("out_bits", 40, r"GemmConfig.out_bits = 40 is out of range: allowed 2 … 32 \(acc_bits\)"),
    ("relu", 1, r"GemmConfig.relu = 1 is a int, not a bool"),
    ("keep", 5, r"GemmConfig.keep = 5 is out of range: allowed 1 … 4 \(block\)"),
    ("acc_bits", 16, r"GemmConfig.acc_bits = 16 cannot hold the worst-case sum of .* \(needs >= \d+ bits for max_k = 64\)"),
])
def test_invalid_fields(field, value, match):
    with pytest.raises(TypeError if field == "relu" else ValueError, match=match):
        GemmConfig(**{field: value})


def test_fields_in_manifest_order_with_the_array_fields_shared():
    assert [field.name for field in dataclasses.fields(GemmConfig)] == [
        "rows", "cols", "act_bits", "act_signed", "weight_bits", "acc_bits", "keep", "block", "overflow",
        "counter_bits", "max_m", "max_k", "max_n", "dataflow", "relu", "out_bits", "act_keep", "act_mode",
        "weight_axis", "pe_pipeline", "name"]
    def specs(cls):
        return {field.name: (field.type, field.default, field.metadata["allowed"]) for field in dataclasses.fields(cls)}

    gemm, systolic = specs(GemmConfig), specs(SystolicConfig)
    same = {name for name in gemm.keys() & systolic.keys() if gemm[name] == systolic[name]}
    assert same == set(ARRAY_FIELDS) == {"rows", "cols", "act_bits", "act_signed", "weight_bits", "acc_bits", "keep",
                                         "block", "overflow", "counter_bits", "pe_pipeline", "name"}


def test_systolic_view_carries_every_array_field():
    cfg = GemmConfig(rows=2, cols=3, act_bits=6, act_signed=False, weight_bits=5, acc_bits=30, keep=1, block=2,
                     counter_bits=20, max_k=3, pe_pipeline=2, name="g")
    assert cfg.systolic == SystolicConfig(rows=2, cols=3, act_bits=6, act_signed=False, weight_bits=5, acc_bits=30,
                                          keep=1, block=2, counter_bits=20, max_k=4, overflow="wrap", pe_pipeline=2)
    assert GemmConfig(overflow="saturate", acc_bits=8).systolic.overflow == "saturate"


def test_pe_pipeline_in_both_dataflows_and_with_activation_sparsity():
    assert GemmConfig(pe_pipeline=4).latency == 4 + 4 + 4
    assert GemmConfig(pe_pipeline=2).top.endswith("_p2")
    assert GemmConfig(pe_pipeline=3, dataflow="os").latency == 4 + 4 + 3
    assert GemmConfig(pe_pipeline=4, keep=2, block=4, act_keep=1).top.endswith("_p4_a1")
    with pytest.raises(ValueError, match=r"GemmConfig.pe_pipeline = 5 is out of range: allowed 0 … 4"):
        GemmConfig(pe_pipeline=5)
    with pytest.raises(ValueError, match=r"GemmConfig.pe_pipeline = 5 is out of range: allowed 0 … 4"):
        GemmConfig(pe_pipeline=5, keep=2, block=4, act_keep=1)


def test_presets_are_gemm_kind_and_the_dense_one_has_the_same_multipliers():
    assert set(list_presets("gemm")) >= {"gemm_4x4_2of4", "gemm_8x8_2of4", "gemm_8x8_dense"}
    sparse, dense = load_config("gemm_8x8_2of4"), load_config("gemm_8x8_dense")
    assert sparse.multipliers == dense.multipliers == 128 and not dense.sparse and sparse.k == 2 * dense.k
    assert dense_twin(sparse).multipliers == 128 and dense_twin(sparse).k == dense.k
    assert sparse.systolic.k == sparse.k and sparse.acc_depth == sparse.max_m
    assert load_config("gemm_4x4_2of4", ["max_m=7"]).max_m == 7
    os_ = load_config("gemm_8x8_2of4_os")
    assert os_.dataflow == "os" and os_.multipliers == 128 and os_.acc_depth == 0 and os_.load_beats == 0
    assert load_config("gemm_4x4_2of4_os").dataflow == "os"


def test_generated_engine_ports_match_manifest():
    from gen.verilog import generate_verilog

    cfg = GemmConfig(rows=2, cols=2, keep=1, block=2, max_m=4, max_k=8, max_n=4, out_bits=6, acc_bits=20)
    art = generate_verilog(cfg)
    top = re.search(rf"module {cfg.top}\((.*?)\);(.*?)endmodule", art.verilog, re.S)
    declared = {name: (d, int(msb) + 1 if msb else 1)
                for d, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", top.group(2), re.M)}
    assert {p["name"]: (p["direction"] + "put", p["width"]) for p in art.manifest["ports"]} == declared
    assert art.manifest["kind"] == "gemm" and art.manifest["config"] == cfg.to_dict()
    assert declared["results__payload"] == ("output", 2 * 6)
    assert art.manifest["streams"]["desc"]["beat"]["width"] == 4 + 5 + 4 + 5   # one spare bit per dimension; shift 0 … 19


def test_generated_os_engine_has_the_ws_ports():
    """dataflow = "os" builds the OS engine with the WS engine's port names and widths."""
    from gen.verilog import generate_verilog

    ws = GemmConfig(rows=2, cols=3, keep=2, block=4, max_m=5, max_k=9, max_n=4, out_bits=6, acc_bits=20)
    os_ = GemmConfig(**{**ws.to_dict(), "dataflow": "os"})
    ports = [{p["name"]: (p["direction"], p["width"]) for p in generate_verilog(c).manifest["ports"]} for c in (ws, os_)]
    assert ports[0] == ports[1]
    assert generate_verilog(os_).manifest["dataflow"] == "os"


def test_perf_cli_os(capsys):
    assert main(["perf", "--config", "gemm_8x8_2of4_os", "--gemm", "64,64,64"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("gemm0"))
    cfg = load_config("gemm_8x8_2of4_os")
    assert line.split()[4:7] == ["8x8", str(perf.job_cycles(cfg, 64, 64, 64)), str(8 * 8 * 16)]


def test_perf_cli(capsys):
    assert main(["perf", "--config", "gemm_8x8_2of4", "--gemm", "256,256,64", "--gemm", "9,40,10"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("gemm0"))
    cfg, dense = load_config("gemm_8x8_2of4"), dense_twin(load_config("gemm_8x8_2of4"))
    c, d = perf.job_cycles(cfg, 256, 256, 64), perf.job_cycles(dense, 256, 256, 64)
    assert line.split()[5:7] == [str(c), str(perf.ideal_cycles(cfg, 256, 256, 64))]
    assert line.split()[8:] == [str(d), f"{d / c:.3f}x"]
    assert "back2back" in out


def test_perf_cli_layers_and_errors(tmp_path, capsys):
    layers = tmp_path / "net.csv"
    layers.write_text("name,M,K,N\n# a comment\nfc1,256,512,128\nfc2,256,128,10\n")
    assert main(["perf", "--config", "gemm_8x8_2of4", "--layers", str(layers)]) == 0
    assert [l.split()[0] for l in capsys.readouterr().out.splitlines() if l.startswith("fc")] == ["fc1", "fc2"]
    assert main(["perf", "--config", "gemm_8x8_2of4", "--gemm", "1,2"]) == 2
    assert "M,K,N" in capsys.readouterr().err
    assert main(["perf", "--config", "ssa_8x8_2of4", "--gemm", "1,2,3"]) == 2
    assert "needs a \"gemm\" config" in capsys.readouterr().err
    assert main(["perf", "--config", "gemm_4x4_2of4", "--gemm", "65,1,1"]) == 2
    assert "M = 65 is out of range" in capsys.readouterr().err

def test_one_engine_with_a_dataflow_strategy():
    """GemmEngine is one class for both dataflows: the config picks the strategy, which gives the beat layouts;
    another Dataflow can be passed; a wrong one or a wrong config is a one-line TypeError naming the argument."""
    from hw.gemm.engine import DATAFLOWS, GemmEngine
    from hw.gemm.front import Dataflow
    from hw.gemm.os_dataflow import OutputStationary
    from hw.gemm.ws_dataflow import WeightStationary

    ws = GemmConfig(rows=2, cols=3, keep=2, block=4, max_m=5, max_k=9, max_n=4)
    os_ = GemmConfig(**{**ws.to_dict(), "dataflow": "os"})
    assert DATAFLOWS == {"ws": WeightStationary, "os": OutputStationary}
    for cfg, kind in ((ws, WeightStationary), (os_, OutputStationary)):
        engine = GemmEngine(cfg)
        engine._MustUse__silence = True     # inspected, not built
        assert type(engine.dataflow) is kind and isinstance(engine.dataflow, Dataflow)
        assert engine.acts.payload.shape() == engine.dataflow.acts_layout
        assert engine.weights.payload.shape() == engine.dataflow.weights_layout
        assert engine.latency == cfg.latency == cfg.rows + cfg.cols + cfg.pe_pipeline
    explicit = GemmEngine(ws, dataflow=WeightStationary(ws))
    explicit._MustUse__silence = True
    assert type(explicit.dataflow) is WeightStationary
    with pytest.raises(TypeError, match=r"^dataflow = 'ws' is not a Dataflow: allowed WeightStationary, "
                                        r"OutputStationary"):
        GemmEngine(ws, dataflow="ws")
    with pytest.raises(TypeError, match=r"^config = \{'rows': 2\} is not a GemmConfig"):
        GemmEngine({"rows": 2})
    with pytest.raises(TypeError, match=r'dataflow = "os"'):
        OutputStationary(ws)
    with pytest.raises(NotImplementedError):
        Dataflow(ws, acts=None, weights=None).build(None, None)
