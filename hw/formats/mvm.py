"""Golden model of the RRAM tile's MVM: the controller's order of operations over a mapped tile, in integers.

Written from the semantics in :mod:`hw.formats.mapping`, independently of any RTL. Arithmetic: column sums are exact
non-negative integers in level units; the ADC clips them to ``0 … 2**adc_bits - 1`` (a lossless ADC when
``adc_bits`` is ``None`` or at least :func:`lossless_adc_bits`); shift-and-add accumulates in int64.
"""

import numpy as np

from hw import checks
from hw.formats.mapping import TileMapping, input_planes, max_level

__all__ = ["max_column_sum", "lossless_adc_bits", "column_sums", "mvm"]


def max_column_sum(ou_rows: int, cell_bits: int, dac_bits: int = 1) -> int:
    """Largest column sum of one OU: ``ou_rows · (2**cell_bits - 1) · (2**dac_bits - 1)``."""
    return ou_rows * max_level(cell_bits) * ((1 << dac_bits) - 1)


def lossless_adc_bits(ou_rows: int, cell_bits: int, dac_bits: int = 1) -> int:
    """ADC bits that never clip: ``ceil(log2(ou_rows · (2**cell_bits - 1) · (2**dac_bits - 1) + 1))``."""
    ou_rows = checks.check_int("ou_rows", ou_rows, 1)
    cell_bits = checks.check_choice("cell_bits", cell_bits, (1, 2, 4))
    dac_bits = checks.check_int("dac_bits", dac_bits, 1, 8)
    return max_column_sum(ou_rows, cell_bits, dac_bits).bit_length()


def _ou_levels(mapping: TileMapping) -> np.ndarray:
    """Levels under every OU, shape (n_ous, ou_rows, ou_cols); absent rows/columns read as 0."""
    g = mapping.geometry
    rows, cols = mapping.ou_rows_of(), mapping.ou_cols_of()
    present = (rows < g.xbar_rows)[:, :, None] & (cols < g.xbar_cols)[:, None, :]
    levels = mapping.levels[mapping.ou_xbar[:, None, None], np.minimum(rows, g.xbar_rows - 1)[:, :, None],
                            np.minimum(cols, g.xbar_cols - 1)[:, None, :]]
    return np.where(present, levels, 0).astype(np.int64)


def column_sums(mapping: TileMapping, drive: np.ndarray) -> np.ndarray:
    """Column sums of every OU for one input step: ``drive`` is (batch, K) of DAC values → (batch, n_ous, ou_cols)."""
    checks.check_instance("mapping", mapping, TileMapping)
    drive = checks.check_int_array("drive", drive, ndim=2, lo=0, whole_floats=False)
    if drive.shape[1] != mapping.n_inputs:
        checks.fail("drive", checks.Text(f"array of shape {drive.shape}"), f"has {drive.shape[1]} columns",
                    f"{mapping.n_inputs} (the mapping's K)")
    idx = mapping.ou_inputs
    wordlines = np.where(idx >= 0, drive[:, np.maximum(idx, 0)], 0)            # (batch, n_ous, ou_rows)
    return np.einsum("bor,orc->boc", wordlines, _ou_levels(mapping))


def mvm(mapping: TileMapping, x, *, input_bits: int = 8, input_signed: bool = True, dac_bits: int = 1,
        adc_bits: int | None = None) -> np.ndarray:
    """``y = x · W`` as the tile computes it: bit-serial planes × scheduled OUs × ADC × shift-and-add.

    Parameters
    ----------
    mapping : TileMapping
        The mapped weights (validated here).
    x : array_like of int, shape (K,) or (batch, K)
        Inputs, ``input_bits`` wide, two's complement when ``input_signed``; out-of-range values raise.
    adc_bits : int or None
        ADC resolution: each OU column sum ``s`` converts to ``min(s, 2**adc_bits - 1)``; ``None`` is lossless.

    Returns
    -------
    ndarray of int64, shape (N,) or (batch, N)
        With a lossless ADC and an exact mapping this equals ``x @ W``.
    """
    checks.check_instance("mapping", mapping, TileMapping)
    input_signed = checks.check_bool("input_signed", input_signed)
    input_bits = checks.check_int("input_bits", input_bits, 2 if input_signed else 1, 32,
                                  allowed=f"{2 if input_signed else 1} … 32")
    dac_bits = checks.check_int("dac_bits", dac_bits, 1, 8)
    if adc_bits is not None:
        adc_bits = checks.check_int("adc_bits", adc_bits, 1, 32, allowed="1 … 32 or None (lossless)")
    mapping.validate()
    # integers only: a float input (0.5) would silently truncate to 0
    x = checks.check_int_array("x", x, ndim=(1, 2), bits=input_bits, signed=input_signed, whole_floats=False)
    single = x.ndim == 1
    x = np.atleast_2d(x)
    if x.shape[1] != mapping.n_inputs:
        raise ValueError(f"x has {x.shape[1]} inputs per vector: the mapping expects K = {mapping.n_inputs}")
    g = mapping.geometry
    raw = x & ((1 << input_bits) - 1)
    cols = mapping.ou_cols_of()
    converted = mapping.ou_col_mask & (cols < g.xbar_cols)
    outputs = mapping.ou_col_output[converted]                                                # (n_conv,)
    scale = (mapping.ou_col_sign.astype(np.int64) << mapping.ou_col_shift.astype(np.int64))[converted]
    y = np.zeros((x.shape[0], mapping.n_outputs), dtype=np.int64)
    for shift, width, negative in input_planes(input_bits, input_signed, dac_bits):
        sums = column_sums(mapping, (raw >> shift) & ((1 << width) - 1))
        if adc_bits is not None:
            sums = np.minimum(sums, (1 << adc_bits) - 1)
        contributions = sums[:, converted] * scale * ((-1 if negative else 1) << shift)
        np.add.at(y, (slice(None), outputs), contributions)
    return y[0] if single else y
