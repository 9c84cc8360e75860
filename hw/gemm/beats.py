"""Beat formats of the GEMM engine: the one definition used by the RTL, the host driver, the golden checks and docs.

Activation and weight beats are the array's (:mod:`hw.systolic.beats`, from :attr:`GemmConfig.systolic`). This
module adds the job descriptor and the result beat (docs/gemm.md "Ports"), packed from bit 0 upward:

- descriptor: ``StructLayout({"m", "k", "n"[, "shift"]})``, unsigned; each dimension field is one bit wider
  than its maximum needs, so an out-of-range value can be expressed (and is rejected by the engine); ``shift``
  only when ``out_bits`` is set;
- result beat: ``ArrayLayout(signed(result_bits), cols)``; element c is ``C[m, n0 + c]`` of the N-tile at n0.
"""

from amaranth.lib import data

from hw import bits
from hw.systolic.beats import result_layout as _array_result_layout

__all__ = ["dim_bits", "desc_layout", "result_layout", "desc_beat", "results_from_beats", "ERROR_FIELDS"]

# bit i of the engine's `error` port: field ERROR_FIELDS[i] of the last rejected descriptor was out of range
ERROR_FIELDS = ("m", "k", "n", "shift")


def dim_bits(maximum):
    """Width of a descriptor dimension field whose legal values are 1 … ``maximum``: one spare bit on top."""
    return maximum.bit_length() + 1


def desc_layout(cfg):
    """The job descriptor of a :class:`gen.gemm.config.GemmConfig` (or anything with its attributes)."""
    fields = {"m": dim_bits(cfg.max_m), "k": dim_bits(cfg.max_k), "n": dim_bits(cfg.max_n)}
    if cfg.shift_bits:
        fields["shift"] = cfg.shift_bits
    return data.StructLayout(fields)


def result_layout(cfg):
    """One result beat: ``n_tile`` (``cols``; ``cols·block`` with weights sparse along N) signed ``result_bits``
    elements."""
    return _array_result_layout(cols=getattr(cfg, "n_tile", cfg.cols), acc_bits=cfg.result_bits)


def desc_beat(cfg, m, k, n, shift=0):
    """One descriptor as an integer. Values must fit their fields (not necessarily the configured maxima)."""
    import numpy as np

    layout = data.ArrayLayout(desc_layout(cfg), 1)
    fields = {"m": [[m]], "k": [[k]], "n": [[n]]}
    if cfg.shift_bits:
        fields["shift"] = [[shift]]
    elif shift:
        raise ValueError(f"shift = {shift}: this config has no requantization (out_bits = None), allowed 0")
    return bits.pack(layout, {name: np.asarray(v) for name, v in fields.items()})[0]


def results_from_beats(cfg, words):
    """Result beats → ``[beats × cols]`` int64 (sign-extended)."""
    return bits.unpack(result_layout(cfg), words)
