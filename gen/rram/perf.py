"""Closed-form cycle model of the RRAM tile controller (docs/rram.md, "Timing").

Counts clock cycles with no input gaps and no output backpressure, with the crossbar model's latency of 2
(command handshake at edge t, response handshake at edge t + 2). The controller takes one operation at a time:
a program or table beat offered while it is idle transfers in the cycle it becomes idle; an input vector's first
beat :data:`INPUT_START` cycles later (the idle state sees the vector, the input state takes its beats). It
becomes idle again :func:`program_cycles` after a program beat, 1 cycle after a table beat and 1 cycle after an
MVM's last output beat.
"""

import numpy as np

from hw import checks

__all__ = ["INPUT_START", "program_cycles", "ou_cycles", "mvm_cycles"]

INPUT_START = 1     # cycles from the controller becoming idle to the first beat of an input vector offered then


def program_cycles(writes, *, logged=False) -> int:
    """Cycles from a program beat's handshake to the next program beat's handshake, for a cell that took
    ``writes`` write-verify iterations (1 … max_iters): accept (1) + per write WRITE (1), READ_CELL (1), response
    (2), i.e. ``1 + 4·writes``, plus 1 for the push into the fault log if the cell is ``logged`` as faulty."""
    writes = checks.check_int("writes", writes, 1, 255, allowed="1 … 255 (max_iters)")
    return 1 + 4 * writes + bool(checks.check_bool("logged", logged))


def ou_cycles(*, ou_rows, ou_cols, converted) -> int:
    """Cycles one scheduled OU takes per input plane: fetch (1), latch (1), gather ``ou_rows + 1``, READ_OU (1),
    response (2), then 1 cycle per OU column plus 2 more per converted column: ``ou_rows + ou_cols + 6 +
    2·converted``."""
    ou_rows, ou_cols = checks.check_int("ou_rows", ou_rows, 1), checks.check_int("ou_cols", ou_cols, 1)
    converted = checks.check_int("converted", converted, 0, ou_cols, allowed=f"0 … {ou_cols} (ou_cols)")
    return ou_rows + ou_cols + 6 + 2 * converted


def mvm_cycles(cfg, mapping) -> int:
    """Cycles from an input vector's first beat handshake to its last output beat's handshake, inclusive:
    ``K`` input beats, ``N`` accumulator clears, per plane 1 + the OUs' :func:`ou_cycles`, then 2 per output."""
    checks.check_attrs("cfg", cfg, ("ou_rows", "ou_cols", "n_planes"), "an RramTileConfig")
    checks.check_attrs("mapping", mapping, ("n_inputs", "n_outputs", "ou_col_mask"),
                       "a TileMapping (or an object with its n_inputs, n_outputs and ou_col_mask)")
    converted = np.asarray(mapping.ou_col_mask).sum(axis=1)
    per_plane = 1 + sum(ou_cycles(ou_rows=cfg.ou_rows, ou_cols=cfg.ou_cols, converted=c) for c in converted)
    return mapping.n_inputs + mapping.n_outputs + cfg.n_planes * per_plane + 2 * mapping.n_outputs
