"""The tile's cycle model against the limit on the issue's workloads, and ``python -m gen rram-perf``."""

import json
import subprocess
import sys

import pytest

from gen.rram import perf
from sim.rram.perf_workloads import WORKLOADS, workload


@pytest.mark.parametrize("adcs", ["ou_cols", "1"])
@pytest.mark.parametrize("name", WORKLOADS)
def test_model_within_the_limit(name, adcs):
    """Isolated MVM <= 1.15 L, a stream of 8 vectors <= 1.10 L per vector (L: the busiest crossbar's reads and
    conversions, plus K + N for an isolated MVM)."""
    cfg, mapping = workload(name, adcs)
    r = perf.report(cfg, mapping, 8)
    busiest = perf.stream_limit_per_vector(cfg, mapping)
    assert r["limit_cycles"] == busiest + mapping.n_inputs + mapping.n_outputs
    assert r["mvm_cycles"] == mapping.n_inputs + mapping.n_outputs + max(r["lane_cycles"]) + perf.MVM_OVERHEAD
    assert r["mvm_cycles"] <= 1.15 * r["limit_cycles"], r
    assert r["stream_cycles_per_vector"] <= 1.10 * r["stream_limit_per_vector"], r
    assert r["old_mvm_cycles"] > (25 if adcs == "ou_cols" else 4) * r["mvm_cycles"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gen", "rram-perf", *args], capture_output=True, text=True)


def test_cli_json_on_the_preset():
    """The issue's acceptance figure: the default layer (dense 128 × 32) at most 1.15 L and 2 400 cycles."""
    out = _cli("--config", "rram_128x128_c2_ou9x8_adc5", "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["mvm_cycles"] <= 1.15 * r["limit_cycles"] and r["mvm_cycles"] <= 2400
    assert (r["K"], r["N"], r["limit_cycles"], r["old_mvm_cycles"]) == (128, 32, 2080, 149992)
    assert r["stream_cycles_per_vector"] <= 1.10 * r["stream_limit_per_vector"] == 1.10 * 1920


def test_cli_table_and_errors():
    out = _cli("--config", "rram_64x64_c1", "--set", "n_xbars=4", "--layer", "64,16", "--set", "adcs_per_xbar=1",
               "--vectors", "4")
    assert out.returncode == 0, out.stderr
    assert "isolated MVM" in out.stdout and "per vector of 4" in out.stdout
    for args, message in [(("--layer", "64"), "is not K,N"), (("--layer", "500,3"), "needs 4 crossbars"),
                          (("--weights", "bars", "--layer-name", "nope"), "--layer-name 'nope' is not in bars")]:
        out = _cli("--config", "rram_128x128_c2_ou9x8_adc5", *args)
        assert out.returncode == 2 and out.stderr.startswith("sparsegen: error:") and message in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    out = _cli("--config", "ssa_8x8_2of4")
    assert out.returncode == 2 and "rram-perf needs an rram one" in out.stderr
