"""Accuracy sweeps of the float physics model against the exact integer product ``x @ W``.

Workload (seeded): ``W`` is 128 × 16 Laplacian weights (``Laplace(0, 1)``) quantized symmetrically per tensor to
int8 (``rint(w · 127 / max|w|)``), so most weights are small and a few reach ±127, as in trained layers; ``x`` is
``vectors`` int8 inputs drawn uniformly from −128 … 127. ``W`` is mapped with :func:`gen.compiler.rram_map.map_dense`
(differential encoding, 2-bit cells: 8 bitlines per output, so the 16 outputs fill one 128 × 128 crossbar) with OUs
of ``ou_rows`` × 8; inputs go in bit-serially (1-bit DAC, signed).

Error metric: the relative RMS error ``‖y − x·W‖₂ / ‖x·W‖₂`` over all outputs of all vectors, averaged over
``chips`` independently programmed chips (programming and fault seeds; the same chips at every sweep point).

Sweeps, each from the baseline operating point (9 × 8 OUs, 5-bit ADC (lossless for 9 rows), the
:class:`~gen.rram.analog.PhysicsParams` defaults: on/off 10, σ_p 3 % of range, read noise 1 %, no faults,
no IR drop) and each with write-verify off and on:

- ADC bits × OU rows (also with ideal devices, where the result must equal the integer golden model);
- programming σ_p; read noise σ_read; stuck-at rate (half SA0, half SA1); wire resistance (IR drop).
"""

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen.compiler.rram_map import map_dense
from hw.formats.mapping import CrossbarGeometry
from hw.formats.mvm import lossless_adc_bits, mvm

from gen.rram.analog import PhysicsParams, physics_mvm

__all__ = ["SweepSpec", "DEFAULT", "QUICK", "workload", "mapping_for", "rel_rms_error", "cross_check", "run_sweep",
           "format_tables", "write_plots"]

K, N, OU_COLS, XBAR = 128, 16, 8, 128
BASELINE_OU_ROWS, BASELINE_ADC_BITS = 9, 5
# The 4-bit ADC clips only the rare column sums above 15 (a few per 64 vectors): enough vectors that some do.
CROSS_CHECK_VECTORS = 512


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep; every list is a set of points, evaluated one parameter at a time from the baseline."""

    ou_rows: tuple = (9, 16, 32, 64, 128)
    adc_bits: tuple = (3, 4, 5, 6, 7, 8, 9)
    prog_sigma: tuple = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1)
    read_sigma: tuple = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
    stuck_rate: tuple = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05)
    wire_r_ohm: tuple = (0.0, 1.0, 5.0, 20.0, 100.0)
    vectors: int = 64
    chips: int = 2
    seed: int = 1


DEFAULT = SweepSpec()
QUICK = SweepSpec(ou_rows=(9, 32), adc_bits=(4, 5, 7), prog_sigma=(0.0, 0.05), read_sigma=(0.0, 0.05),
                  stuck_rate=(0.0, 0.02), wire_r_ohm=(0.0, 100.0), vectors=8, chips=1)


def workload(seed: int, vectors: int, k: int = K, n: int = N):
    """Seeded ``(W, x)``: Laplacian weights quantized to int8 (k × n), uniform int8 inputs (vectors × k)."""
    rng = np.random.default_rng(seed)
    w = rng.laplace(0.0, 1.0, size=(k, n))
    w = np.rint(w * 127 / np.abs(w).max()).astype(np.int64)
    x = rng.integers(-128, 128, size=(vectors, k))
    return w, x


def rel_rms_error(y, reference) -> float:
    """``‖y − reference‖₂ / ‖reference‖₂`` over every element."""
    reference = np.asarray(reference, dtype=np.float64)
    return float(np.linalg.norm(np.asarray(y, dtype=np.float64) - reference) / np.linalg.norm(reference))


def mapping_for(w, ou_rows):
    """Dense differential mapping of int8 ``w`` on 128 × 128 crossbars of 2-bit cells, OUs of ``ou_rows`` × 8."""
    geometry = CrossbarGeometry(xbar_rows=XBAR, xbar_cols=XBAR, ou_rows=ou_rows, ou_cols=OU_COLS, cell_bits=2)
    return map_dense(w, geometry, weight_bits=8, encoding="differential")


def _error(mapping, w, x, params, adc_bits, spec):
    errors = [rel_rms_error(physics_mvm(mapping, x, params, seed=(spec.seed, chip), adc_bits=adc_bits), x @ w)
              for chip in range(spec.chips)]
    return float(np.mean(errors))


def cross_check(seed: int = 1, vectors: int = CROSS_CHECK_VECTORS) -> dict:
    """Noise-free 9-row OUs, 2-bit cells, int8 weights and inputs: 5-bit ADC exact, 4-bit ADC lossy.

    Returns the relative RMS errors of :func:`~gen.rram.analog.physics_mvm` with ideal devices at 5 and 4 ADC
    bits, and whether both equal the integer golden model :func:`hw.formats.mvm.mvm` element for element.
    """
    w, x = workload(seed, vectors)
    mapping = mapping_for(w, 9)
    out = {"ou_rows": 9, "cell_bits": 2, "vectors": vectors, "lossless_adc_bits": lossless_adc_bits(9, 2)}
    same = True
    for bits in (5, 4):
        y = physics_mvm(mapping, x, PhysicsParams.ideal(), seed=seed, adc_bits=bits)
        same &= bool(np.array_equal(y, mvm(mapping, x, adc_bits=bits)))
        out[f"adc{bits}_error"] = rel_rms_error(y, x @ w)
    out["matches_golden"] = same
    return out


def run_sweep(spec: SweepSpec = DEFAULT) -> dict:
    """Run every sweep of ``spec``; returns a JSON-ready dict (see :func:`format_tables` for its layout)."""
    t0 = time.perf_counter()
    w, x = workload(spec.seed, spec.vectors)
    base = PhysicsParams()
    variants = {"wv_off": base, "wv_on": base.replace(write_verify=True)}
    result = {"spec": dataclasses.asdict(spec),
              "workload": {"K": K, "N": N, "vectors": spec.vectors, "weights": "Laplace(0,1) quantized to int8",
                           "inputs": "uniform int8", "crossbar": f"{XBAR}x{XBAR}", "ou_cols": OU_COLS,
                           "cell_bits": 2, "encoding": "differential", "dac_bits": 1},
              "baseline": {"ou_rows": BASELINE_OU_ROWS, "adc_bits": BASELINE_ADC_BITS,
                           "params": dataclasses.asdict(base)},
              "cross_check": cross_check(spec.seed)}

    adc = {"ou_rows": list(spec.ou_rows), "adc_bits": list(spec.adc_bits), "ideal": [], "wv_off": [], "wv_on": []}
    ideal_matches_golden = True
    for ou_rows in spec.ou_rows:
        mapping = mapping_for(w, ou_rows)
        rows = {name: [] for name in ("ideal", "wv_off", "wv_on")}
        for bits in spec.adc_bits:
            y = physics_mvm(mapping, x, PhysicsParams.ideal(), seed=spec.seed, adc_bits=bits)
            ideal_matches_golden &= bool(np.array_equal(y, mvm(mapping, x, adc_bits=bits)))
            rows["ideal"].append(rel_rms_error(y, x @ w))
            for name, params in variants.items():
                rows[name].append(_error(mapping, w, x, params, bits, spec))
        for name, values in rows.items():
            adc[name].append(values)
    adc["ideal_matches_golden"] = ideal_matches_golden
    result["adc_ou"] = adc

    mapping = mapping_for(w, BASELINE_OU_ROWS)
    sweeps = {}
    for field, values, change in (
            ("prog_sigma", spec.prog_sigma, lambda v: {"prog_sigma": v}),
            ("read_sigma", spec.read_sigma, lambda v: {"read_sigma": v}),
            ("stuck_rate", spec.stuck_rate, lambda v: {"sa0_rate": v / 2, "sa1_rate": v / 2}),
            ("wire_r_ohm", spec.wire_r_ohm, lambda v: {"wire_r_ohm": v})):
        sweeps[field] = {"values": list(values)}
        for name, params in variants.items():
            sweeps[field][name] = [_error(mapping, w, x, params.replace(**change(v)), BASELINE_ADC_BITS, spec)
                                   for v in values]
    result["sweeps"] = sweeps
    result["seconds"] = time.perf_counter() - t0
    return result


def _pct(value):
    return f"{100 * value:.3g}%"


SWEEP_TITLES = {"prog_sigma": ("programming σ_p (of range)", _pct), "read_sigma": ("read noise σ (of G)", _pct),
                "stuck_rate": ("stuck-at rate (½ SA0, ½ SA1)", _pct), "wire_r_ohm": ("wire R per cell (Ω)", "{:g}".format)}


def format_tables(result: dict) -> str:
    """The sweep as plain-text (Markdown) tables of relative RMS error in percent."""
    lines = []
    cc = result["cross_check"]
    lines.append(f"cross-check (ideal devices, 9-row OUs, 2-bit cells, int8 × int8): 5-bit ADC error "
                 f"{cc['adc5_error']:.3g}, 4-bit ADC error {cc['adc4_error']:.3g} ({_pct(cc['adc4_error'])}); "
                 f"equal to the integer golden model: {'yes' if cc['matches_golden'] else 'NO'}")
    adc = result["adc_ou"]
    titles = {"ideal": "ideal devices", "wv_off": "defaults, write-verify off", "wv_on": "defaults, write-verify on"}
    for name, title in titles.items():
        lines.append("")
        lines.append(f"relative RMS error (%) — ADC bits × OU rows, {title}"
                     + (f" (equal to the integer golden model: {'yes' if adc['ideal_matches_golden'] else 'NO'})"
                        if name == "ideal" else ""))
        lines.append("| ADC bits | " + " | ".join(f"{r} rows" for r in adc["ou_rows"]) + " |")
        lines.append("|---:|" + "---:|" * len(adc["ou_rows"]))
        for j, bits in enumerate(adc["adc_bits"]):
            lines.append(f"| {bits} | " + " | ".join(f"{100 * adc[name][i][j]:.3g}" for i in range(len(adc["ou_rows"])))
                         + " |")
    for field, sweep in result["sweeps"].items():
        title, fmt = SWEEP_TITLES[field]
        lines.append("")
        lines.append(f"relative RMS error (%) vs {title}; 9×8 OUs, 5-bit ADC, other parameters at their defaults")
        lines.append("| " + title + " | write-verify off | write-verify on |")
        lines.append("|---:|---:|---:|")
        for v, off, on in zip(sweep["values"], sweep["wv_off"], sweep["wv_on"]):
            lines.append(f"| {fmt(v)} | {100 * off:.3g} | {100 * on:.3g} |")
    return "\n".join(lines)


def write_plots(result: dict, out_dir) -> list[Path]:
    """PNG plots of every sweep into ``out_dir``; returns their paths. Needs matplotlib (extra ``plot``)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    floor = 1e-5                       # exact results (error 0) drawn on the floor of the log axis
    paths = []
    adc = result["adc_ou"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
    for ax, (name, title) in zip(axes, (("ideal", "ideal devices"), ("wv_off", "write-verify off"),
                                        ("wv_on", "write-verify on"))):
        for i, rows in enumerate(adc["ou_rows"]):
            ax.semilogy(adc["adc_bits"], np.maximum(adc[name][i], floor), marker="o", label=f"{rows} rows")
        ax.set_title(title)
        ax.set_xlabel("ADC bits")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("relative RMS error")
    axes[0].legend()
    fig.suptitle("ADC bits × OU rows (OU width 8, 2-bit cells, int8 × int8)")
    fig.tight_layout()
    paths.append(out_dir / "adc_ou.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    for field, sweep in result["sweeps"].items():
        title, _ = SWEEP_TITLES[field]
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for name, label in (("wv_off", "write-verify off"), ("wv_on", "write-verify on")):
            ax.semilogy(sweep["values"], np.maximum(sweep[name], floor), marker="o", label=label)
        ax.set_xlabel(title)
        ax.set_ylabel("relative RMS error")
        ax.set_title("9×8 OUs, 5-bit ADC, other parameters at defaults", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        paths.append(out_dir / f"{field}.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
