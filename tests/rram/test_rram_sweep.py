"""`sparsegen rram-sweep` (gen/rram/cli.py, gen/rram/sweep.py): a tiny sweep writes its PNGs and JSON, and
the cross-check holds."""

import json

import numpy as np

from gen.cli import main
from gen.rram.sweep import CROSS_CHECK_VECTORS, QUICK, mapping_for, workload
from hw.formats.mvm import column_sums

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SWEEPS = ("prog_sigma", "read_sigma", "stuck_rate", "wire_r_ohm")


def test_cli_quick_sweep(tmp_path, capsys, seed):
    out, figures = tmp_path / "plots", tmp_path / "figures" / "sweep.json"
    assert main(["rram-sweep", "--quick", "--seed", str(seed % 1000), "--out", str(out), "--json", str(figures)]) == 0
    printed = capsys.readouterr().out
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == sorted(["adc_ou.png", *(f"{name}.png" for name in SWEEPS)])
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
        assert str(png) in printed
    result = json.loads(figures.read_text())
    adc = result["adc_ou"]
    assert adc["ou_rows"] == list(QUICK.ou_rows) and adc["adc_bits"] == list(QUICK.adc_bits)
    for name in ("ideal", "wv_off", "wv_on"):
        assert np.shape(adc[name]) == (len(QUICK.ou_rows), len(QUICK.adc_bits))
    assert adc["ideal_matches_golden"] is True
    # ideal devices: 9 rows need 5 ADC bits, 32 rows need 7 (lossless_adc_bits)
    ideal = dict(zip(adc["ou_rows"], adc["ideal"]))
    assert ideal[9][1] == ideal[9][2] == 0          # (4 bits clip rarely at 9 rows: see the cross-check below)
    assert ideal[32][0] > 0 and ideal[32][0] >= ideal[32][1] and ideal[32][2] == 0
    for name in SWEEPS:
        sweep = result["sweeps"][name]
        assert sweep["values"] == list(getattr(QUICK, name))
        assert len(sweep["wv_off"]) == len(sweep["wv_on"]) == len(sweep["values"])
        assert all(e >= 0 for e in sweep["wv_off"] + sweep["wv_on"])
    # the larger value of every swept non-ideality costs accuracy; without write-verify the 3 % programming
    # noise dominates, and only the programming and fault sweeps differ reliably
    for name in SWEEPS:
        for variant in ("wv_off", "wv_on") if name in ("prog_sigma", "stuck_rate") else ("wv_on",):
            low, high = result["sweeps"][name][variant]
            assert high > low, (name, variant)
    cc = result["cross_check"]
    # the 4-bit ADC is lossy exactly when some column sum of the workload's bit planes exceeds 15 (2.9 % of the
    # seeds 0 … 999 have none: then the error is 0); counted here from the golden column sums
    w, x = workload(seed % 1000, CROSS_CHECK_VECTORS)
    mapping, raw = mapping_for(w, 9), x & 0xFF
    clipped = sum(int((column_sums(mapping, (raw >> b) & 1) > 15).sum()) for b in range(8))
    assert cc["adc5_error"] == 0 and cc["adc4_error"] < 0.02 and cc["matches_golden"] is True
    assert (cc["adc4_error"] > 0) == (clipped > 0), (cc["adc4_error"], clipped)
    assert cc["vectors"] == CROSS_CHECK_VECTORS and cc["lossless_adc_bits"] == 5
    assert "5-bit ADC error 0," in printed


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main(["rram-sweep", "--quick", "--vectors", "0", "--out", str(tmp_path)]) == 2
    assert "--vectors = 0 is out of range" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
