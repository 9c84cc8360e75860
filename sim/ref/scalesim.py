"""SCALE-Sim v3 as a reference cycle model: run it on GEMMs, parse its reports, and its closed form.

SCALE-Sim (``scalesim==3.0.0`` on PyPI) crashes with numpy >= 2.4 while the project pins numpy 2.4.6, so it
runs in its own venv, ``<build>/scalesim-venv`` (:func:`gen.paths.build_dir`), created on first use from
:data:`VENV_REQUIREMENTS` (every package ``==`` pinned; ``make scalesim-venv`` creates it ahead of time). Each call writes the ``.cfg``,
topology and layout CSVs SCALE-Sim needs into a fresh directory and runs ``scalesim_runner.py`` there.

Mapping of a GEMM ``C[M×N] = A[M×K] · W[K×N]`` (read from SCALE-Sim's ``topology_utils``/``systolic_compute_*``
and checked against its runs by ``tests/gemm/test_scalesim_ref.py``): a GEMM topology row ``name, M, N, K,`` is the
1×K-kernel "convolution" of an M×K image with N filters, so ``K`` is the reduction (window) and ``N`` the
filter count. On an ``R × C`` array:

- WS: a fold holds an ``R × C`` tile of ``W`` (``ceil(K/R) · ceil(N/C)`` folds); each streams the ``M`` rows
  of ``A``: ``R`` cycles of weight load, ``M`` rows, ``C - 1`` drain and ``R - 1`` skew, ``2R + C + M - 2``.
- OS: a fold holds an ``R × C`` tile of ``C`` (``ceil(M/R) · ceil(N/C)`` folds): ``K`` reduction steps,
  ``R - 1`` skew and ``C - 1`` drain, ``K + R + C - 2``.
- Compute cycles (SCALE-Sim's "Total Cycles") are ``folds · per_fold - 1``: it reports the last cycle index.
  "Total Cycles (incl. prefetch)" adds the DRAM prefetch before the first fold and the write-back after.

N:M sparsity (``[sparsity] SparsitySupport = true``, the ratio as a 5th topology column ``"n:m"``, layer-wise
mode with ``OptimizedMapping = false``): SCALE-Sim keeps the first ``n`` of every ``m`` rows of ``W`` (a fixed
pattern), compresses ``W`` to ``K' = (K // m)·n + min(n, K % m)`` rows, gathers the matching columns of ``A``,
and runs the compressed ``M × K' × N`` GEMM on the same dense array, in WS and OS alike. It models a shorter
reduction only: the array and its PEs are unchanged, and it charges the cost of sharing an input block
among ``m/n`` rows as extra IFMAP SRAM reads, plus metadata storage/bandwidth for the chosen format
(``ellpack_block`` here). Compute cycles are the dense formula with ``K'`` for ``K``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from hw.formats.conv import conv_gemm_shape
from gen.paths import build_dir
from sim.common.runner import locked

__all__ = ["SCALESIM_VERSION", "VENV_REQUIREMENTS", "default_venv_dir", "ScaleSimUnavailable", "ensure_venv",
           "run_scalesim", "run_scalesim_conv", "scalesim_conv_output_pixels", "formula_cycles", "kept_k",
           "conv_to_gemm", "parse_sparsity"]

SCALESIM_VERSION = "3.0.0"
# scalesim 3.0.0 and its dependency closure as pip resolves it on Python 3.11 with numpy held below 2.4
# (scalesim 3.0.0 crashes under numpy >= 2.4, hence a venv of its own).
VENV_REQUIREMENTS = (
    f"scalesim=={SCALESIM_VERSION}", "numpy==2.3.5", "absl-py==2.5.1", "configparser==7.3.0",
    "contourpy==1.3.3", "cycler==0.12.1", "Cython==3.3.1", "fonttools==4.68.0", "kiwisolver==1.5.1",
    "llvmlite==0.50.0", "matplotlib==3.11.2", "numba==0.68.1", "packaging==26.3", "pandas==3.1.1",
    "pillow==13.0.0", "pyparsing==3.3.3", "python-dateutil==4.0.0", "tqdm==4.70.1", "tzdata==2026.6",
)
DATAFLOWS = ("ws", "os")
SRAM_KB = 1024          # each of the IFMAP, filter and OFMAP SRAMs; irrelevant to the compute cycles
_RUNNER = Path(__file__).with_name("scalesim_runner.py")
_STAMP = ".sparsegen-scalesim-ok"
# pip output meaning "PyPI could not be reached" (as opposed to a resolution or build failure)
_NETWORK_ERRORS = re.compile(r"NewConnectionError|ConnectTimeout|ConnectionError|Max retries exceeded|"
                             r"Temporary failure in name resolution|Network is unreachable|ProxyError|"
                             r"ReadTimeout|Name or service not known")


def _index_reachable(python):
    """Whether the package index pip uses answers at all (any HTTP status counts as reachable)."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        proc = subprocess.run([str(python), "-m", "pip", "config", "get", "global.index-url"],
                              capture_output=True, text=True)
        url = proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "https://pypi.org/simple"
    try:
        urllib.request.urlopen(f"{url.rstrip('/')}/scalesim/", timeout=15).close()
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


class ScaleSimUnavailable(RuntimeError):
    """The SCALE-Sim venv could not be created; ``network`` is true when pip could not reach the index."""

    def __init__(self, message, network=False):
        super().__init__(message)
        self.network = network


def default_venv_dir() -> Path:
    """``<build>/scalesim-venv``: the default venv of :func:`ensure_venv`."""
    return build_dir() / "scalesim-venv"


def ensure_venv(venv_dir=None) -> Path:
    """Create (once) the SCALE-Sim venv and return its Python. Concurrent callers wait on a lock file.

    The venv is reused while its stamp file lists exactly :data:`VENV_REQUIREMENTS`. Raises
    :class:`ScaleSimUnavailable` with pip's output if the installation fails.
    """
    venv_dir = Path(venv_dir) if venv_dir is not None else default_venv_dir()
    python = venv_dir / "bin" / "python"
    stamp = venv_dir / _STAMP
    want = "\n".join(VENV_REQUIREMENTS) + "\n"
    with locked(venv_dir.parent / (venv_dir.name + ".lock")):
        if stamp.is_file() and stamp.read_text() == want and python.exists():
            return python
        stamp.unlink(missing_ok=True)
        steps = [[sys.executable, "-m", "venv", "--clear", str(venv_dir)],
                 [str(python), "-m", "pip", "install", "--disable-pip-version-check",
                  *VENV_REQUIREMENTS]]
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                out = proc.stdout + proc.stderr
                # pip does not always name a connection failure (not with retries off), so ask the index too
                network = bool(_NETWORK_ERRORS.search(out)) or (python.exists() and not _index_reachable(python))
                why = " and the package index is unreachable" if network else ""
                raise ScaleSimUnavailable(f"SCALE-Sim venv unavailable: `{' '.join(cmd[:4])} ...` failed "
                                          f"(exit {proc.returncode}){why}:\n{out[-3000:]}", network=network)
        stamp.write_text(want)
    return python


def parse_sparsity(sparsity):
    """``None`` (dense), ``"n:m"`` or ``(n, m)`` → ``None`` or ``(n, m)`` with ``1 <= n <= m``."""
    if sparsity is None:
        return None
    try:
        n, m = (int(v) for v in (sparsity.split(":") if isinstance(sparsity, str) else sparsity))
    except (TypeError, ValueError):
        raise ValueError(f"sparsity must be None, 'n:m' or (n, m), got {sparsity!r}") from None
    if not 1 <= n <= m:
        raise ValueError(f"sparsity n:m needs 1 <= n <= m, got {n}:{m}")
    return n, m


def kept_k(k, n, m):
    """Rows of ``W`` SCALE-Sim keeps under ``n:m`` sparsity: the first ``n`` of each block of ``m``."""
    return (k // m) * n + min(n, k % m)


def _check_dims(dataflow, rows, cols, m, k, n):
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {dataflow!r}")
    for name, v in (("rows", rows), ("cols", cols), ("M", m), ("K", k), ("N", n)):
        if not (isinstance(v, int) and v >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


def formula_cycles(dataflow, rows, cols, m, k, n, *, sparsity=None):
    """SCALE-Sim's compute cycles in closed form (module docstring): ``folds · per_fold - 1`` with

    - WS: ``folds = ceil(K/R) · ceil(N/C)``, ``per_fold = 2R + C + M - 2``;
    - OS: ``folds = ceil(M/R) · ceil(N/C)``, ``per_fold = K + R + C - 2``;

    and ``K`` replaced by :func:`kept_k` under ``sparsity = (n, m)`` or ``"n:m"``.
    """
    _check_dims(dataflow, rows, cols, m, k, n)
    sp = parse_sparsity(sparsity)
    if sp:
        k = kept_k(k, *sp)
    if dataflow == "ws":
        return math.ceil(k / rows) * math.ceil(n / cols) * (2 * rows + cols + m - 2) - 1
    return math.ceil(m / rows) * math.ceil(n / cols) * (k + rows + cols - 2) - 1


def conv_to_gemm(h, w, c_in, c_out, kh, kw, stride=1, padding=0):
    """``(M, K, N)`` of a convolution lowered by im2col (:func:`hw.formats.conv.conv_gemm_shape`):
    ``M = H_out · W_out``, ``K = c_in · kh · kw``, ``N = c_out``."""
    return conv_gemm_shape(h, w, c_in, c_out, kh, kw, stride, padding)


def _config_text(dataflow, rows, cols, sparse):
    sparsity = ("SparsitySupport = true\nSparseRep = ellpack_block\nOptimizedMapping = false\nBlockSize = 4\n"
                "RandomNumberGeneratorSeed = 40\n") if sparse else "SparsitySupport = false\n"
    return f"""[general]
run_name = sparsegen

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = {SRAM_KB}
filtersramszkB = {SRAM_KB}
ofmapsramszkB = {SRAM_KB}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32
Bandwidth = 10

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
{sparsity}"""


# SCALE-Sim parses the layout CSV even with custom layouts off; one row per layer, every row ends with ','.
_LAYOUT_HEADER = ("Layer name,IFMAP Height Intraline Factor,IFMAP Width Intraline Factor,Filter Height Intraline "
                  "Factor,Filter Width Intraline Factor,Channel Intraline Factor,Num Filter Intraline Factor,IFMAP "
                  "Height Intraline Order,IFMAP Width Intraline Order,Channel Intraline Order,IFMAP Height "
                  "Interline Order,IFMAP Width Interline Order,Channel Interline Order,Num Filter Intraline Order,"
                  "Channel Intraline Order,Filter Height Intraline Order,Filter Width Intraline Order,Num Filter "
                  "Interline Order,Channel Interline Order,Filter Height Interline Order,Filter Width Interline "
                  "Order,")
_LAYOUT_ROW = "1,1,1,1,1,1,0,1,2,0,1,2,0,1,2,3,0,1,2,3,"


def _topology(gemms, convs, sp):
    """SCALE-Sim topology CSV: GEMM rows ``name, M, N, K,`` or convolution rows ``name, IFMAP H, IFMAP W,
    filter H, filter W, channels, filters, stride,`` (no padding in SCALE-Sim: the padded size is given)."""
    ratio = f"{sp[0]}:{sp[1]}," if sp else ""
    if convs is None:
        return "Layer,M,N,K,\n" + "".join(f"L{i},{m},{n},{k},{ratio}\n" for i, (m, k, n) in enumerate(gemms))
    head = "Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides,\n"
    return head + "".join(f"L{i},{h + 2 * p},{w + 2 * p},{kh},{kw},{ci},{co},{s},{ratio}\n"
                          for i, (h, w, ci, co, kh, kw, s, p) in enumerate(convs))


def _read_report(path):
    with open(path, newline="") as f:
        rows = [[cell.strip() for cell in row] for row in csv.reader(f)]
    header = [h for h in rows[0] if h]
    return [dict(zip(header, (float(v) for v in row[:len(header)]))) for row in rows[1:] if row]


def run_scalesim(dataflow, rows, cols, gemms, *, sparsity=None, memory=True, workdir=None,
                 _convs=None) -> list[dict]:
    """Run SCALE-Sim on GEMMs ``(M, K, N)`` (``C[M×N] = A[M×K]·W[K×N]``) on a ``rows × cols`` array.

    Parameters
    ----------
    dataflow : ``"ws"`` or ``"os"``
    rows, cols : int
        Array height (SCALE-Sim's ``ArrayHeight``) and width.
    gemms : sequence of (M, K, N)
        One SCALE-Sim layer each.
    sparsity : None, ``"n:m"`` or ``(n, m)``
        Layer-wise N:M weight sparsity (module docstring); ``None`` runs dense.
    memory : bool
        True runs the full simulator (compute plus the cycle-by-cycle SRAM/DRAM model). False runs only
        its compute stage (``scalesim_runner.py``), same compute cycles, far faster; the memory figures
        are then ``None``.
    workdir : path, optional
        Directory for SCALE-Sim's inputs and reports (kept); default a temporary directory (removed).

    Returns
    -------
    list of dict, one per GEMM: ``M, K, N, dataflow, rows, cols, sparsity`` (``"n:m"`` or None),
    ``compute_cycles`` (SCALE-Sim's "Total Cycles"), ``total_cycles`` ("Total Cycles (incl. prefetch)"),
    ``stall_cycles``, ``utilization`` (SCALE-Sim's "Overall Util %" / 100: dense MACs ``M·K·N`` over
    ``compute_cycles · rows · cols``, so above 1 under sparsity), ``mapping_efficiency`` and
    ``compute_utilization`` (fractions), ``formula`` (:func:`formula_cycles`), ``dram`` (``memory`` only: the DRAM
    words its memory model moves, ``ifmap_reads``, ``filter_reads``, ``ofmap_writes``, from its
    ``DETAILED_ACCESS_REPORT.csv``) and ``scalesim``, SCALE-Sim's own report row(s) as parsed (column name →
    number; ``access``: the detailed access row).
    """
    gemms = [tuple(g) for g in gemms]
    if not gemms:
        raise ValueError("gemms must hold at least one (M, K, N)")
    for g in gemms:
        if len(g) != 3:
            raise ValueError(f"each GEMM must be (M, K, N), got {g!r}")
        _check_dims(dataflow, rows, cols, *g)
    sp = parse_sparsity(sparsity)
    python = ensure_venv()
    with tempfile.TemporaryDirectory(prefix="sparsegen-scalesim-") as tmp:
        d = Path(workdir) if workdir is not None else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        (d / "sparsegen.cfg").write_text(_config_text(dataflow, rows, cols, sp is not None))
        (d / "topology.csv").write_text(_topology(gemms, _convs, sp))
        (d / "layout.csv").write_text(_LAYOUT_HEADER + "\n" + "".join(f"L{i},{_LAYOUT_ROW}\n"
                                                                      for i in range(len(gemms))))
        out = d / "out"
        out.mkdir(exist_ok=True)
        # -I: isolated, so the runner's directory (holding this module, also named scalesim) is not on sys.path
        cmd = [str(python), "-I", str(_RUNNER), "full" if memory else "compute", str(d / "sparsegen.cfg"),
               str(d / "topology.csv"), str(d / "layout.csv"), str(out), "gemm" if _convs is None else "conv"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=d)
        if proc.returncode:
            raise RuntimeError(f"SCALE-Sim failed (exit {proc.returncode}) on {gemms} ({dataflow}, {rows}x{cols}, "
                               f"sparsity {sparsity}):\n{(proc.stdout + proc.stderr)[-3000:]}")
        if memory:
            reports = _read_report(out / "sparsegen" / "COMPUTE_REPORT.csv")
            for rep, access in zip(reports, _read_report(out / "sparsegen" / "DETAILED_ACCESS_REPORT.csv")):
                rep["access"] = access
            if sp:
                for rep, extra in zip(reports, _read_sparse_report(out / "sparsegen" / "SPARSE_REPORT.csv")):
                    rep.update(extra)
        else:
            reports = _read_report(out / "COMPUTE_ONLY_REPORT.csv")
    if len(reports) != len(gemms):
        raise RuntimeError(f"SCALE-Sim reported {len(reports)} layers for {len(gemms)} GEMMs")
    results = []
    for (m, k, n), rep in zip(gemms, reports):
        results.append({
            "M": m, "K": k, "N": n, "dataflow": dataflow, "rows": rows, "cols": cols,
            "sparsity": f"{sp[0]}:{sp[1]}" if sp else None,
            "compute_cycles": int(rep["Total Cycles"]),
            "total_cycles": int(rep["Total Cycles (incl. prefetch)"]) if memory else None,
            "stall_cycles": int(rep["Stall Cycles"]) if memory else None,
            "utilization": rep["Overall Util %"] / 100,
            "mapping_efficiency": rep["Mapping Efficiency %"] / 100,
            "compute_utilization": rep["Compute Util %"] / 100,
            "formula": formula_cycles(dataflow, rows, cols, m, k, n, sparsity=sp),
            # DRAM words moved (memory model only; SRAMs of SRAM_KB each, double-buffered by SCALE-Sim)
            "dram": ({"ifmap_reads": int(rep["access"]["DRAM IFMAP Reads"]),
                      "filter_reads": int(rep["access"]["DRAM Filter Reads"]),
                      "ofmap_writes": int(rep["access"]["DRAM OFMAP Writes"])} if memory else None),
            "scalesim": rep,
        })
    return results


def scalesim_conv_output_pixels(h, w, kh, kw, stride, padding):
    """Output pixels SCALE-Sim's convolution mode counts: ``ceil((H' - kh + s) / s) · ceil((W' - kw + s) / s)``
    on the padded input ``H' = H + 2p``. That is one more row (column) than a framework's
    ``(H' - kh) // s + 1`` whenever ``s`` does not divide ``H' - kh``: it counts a partial window at the edge
    (ResNet-18's conv1: 113×113 instead of 112×112)."""
    hp, wp = h + 2 * padding, w + 2 * padding
    return math.ceil((hp - kh + stride) / stride) * math.ceil((wp - kw + stride) / stride)


def run_scalesim_conv(dataflow, rows, cols, convs, *, sparsity=None, memory=True, workdir=None) -> list[dict]:
    """Run SCALE-Sim on convolutions in its own convolution mode (its own im2col), one layer per
    ``(H, W, C_in, C_out, kh, kw, stride, padding)`` (square stride and padding; SCALE-Sim has no padding, so
    it gets the padded input size).

    Results as :func:`run_scalesim`, with ``M, K, N`` from :func:`conv_to_gemm` (our lowering), plus
    ``scalesim_M`` (:func:`scalesim_conv_output_pixels`, which differs from ``M`` when the stride does not
    divide the padded extent) and ``formula`` computed with ``scalesim_M``. The benchmark therefore feeds
    SCALE-Sim GEMM shapes from our lowering rather than convolutions.
    """
    convs = [tuple(c) for c in convs]
    for c in convs:
        if len(c) != 8 or not all(isinstance(v, int) for v in c):
            raise ValueError(f"each convolution must be 8 ints (H, W, C_in, C_out, kh, kw, stride, padding), "
                             f"got {c!r}")
    results = run_scalesim(dataflow, rows, cols, [conv_to_gemm(*c) for c in convs], sparsity=sparsity,
                           memory=memory, workdir=workdir, _convs=convs)
    for (h, w, _, _, kh, kw, stride, pad), r in zip(convs, results):
        r["scalesim_M"] = scalesim_conv_output_pixels(h, w, kh, kw, stride, pad)
        r["formula"] = formula_cycles(dataflow, rows, cols, r["scalesim_M"], r["K"], r["N"], sparsity=sparsity)
    return results


def _read_sparse_report(path):
    # Its second column is the representation name (text): keep the numeric ones only.
    with open(path, newline="") as f:
        rows = [[cell.strip() for cell in row] for row in csv.reader(f)]
    header = [h for h in rows[0] if h]
    out = []
    for row in rows[1:]:
        if row:
            out.append({f"sparse: {h}": float(v) for h, v in zip(header, row) if h not in ("LayerID",)
                        and re.fullmatch(r"-?[0-9.eE+-]+", v)})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.ref.scalesim", description=__doc__.splitlines()[0])
    parser.add_argument("--ensure-venv", action="store_true", help="create <build>/scalesim-venv ($SPARSEGEN_BUILD, else ./build) and exit")
    parser.add_argument("--dataflow", choices=DATAFLOWS, default="ws")
    parser.add_argument("--array", default="8x8", help="ROWSxCOLS (default 8x8)")
    parser.add_argument("--sparsity", help="n:m (default dense)")
    parser.add_argument("gemm", nargs="*", help="MxKxN, e.g. 64x64x64")
    args = parser.parse_args(argv)
    if args.ensure_venv:
        print(ensure_venv())
        return 0
    rows, cols = (int(v) for v in args.array.lower().split("x"))
    gemms = [tuple(int(v) for v in g.lower().split("x")) for g in args.gemm] or [(64, 64, 64)]
    for r in run_scalesim(args.dataflow, rows, cols, gemms, sparsity=args.sparsity):
        print(f"{r['M']}x{r['K']}x{r['N']} {r['dataflow']} {r['rows']}x{r['cols']} sparsity={r['sparsity']}: "
              f"compute {r['compute_cycles']} (formula {r['formula']}), total {r['total_cycles']}, "
              f"util {r['utilization']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
