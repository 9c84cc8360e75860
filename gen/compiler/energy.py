"""Per-operation energy table of the RRAM tile, with its sources (README "Compiler" repeats it).

Accounting in the NeuroSim style: count every ADC conversion, wordline drive (DAC), cell read, shift-and-add and
buffer access an inference performs and multiply by a per-operation energy. Defaults are derived from ISAAC's
component powers (Shafiee et al., ISCA 2016, 32 nm: IMA with 8 crossbars of 128×128 2-bit cells read every
100 ns, 8 ADCs of 8 bits at 1.28 GS/s, 8×128 1-bit DACs, 4 shift-and-add units):

====================  ==========  ============================================================================
operation             default     derivation
====================  ==========  ============================================================================
ADC, 8-bit            1.67 pJ     ISAAC ADC (2 mW at 1.28 GS/s ≈ 1.56 pJ; 1.67 pJ as quoted in the project's
                                  background notes). A ``b``-bit conversion costs ``1.67 · 2**(b-8)`` pJ
                                  (Walden figure of merit: energy doubles per bit).
DAC (wordline drive)  0.39 pJ     4 mW for 1024 1-bit DACs over a 100 ns read.
cell read             0.0018 pJ   0.3 mW per 128×128 crossbar over 100 ns, per cell.
shift-and-add         0.039 pJ    0.2 mW for 4 units at 1.28 GHz, per operation.
buffer access         1.0 pJ      per byte; an assumption of the order of a small on-chip SRAM/eDRAM access at
                                  32 nm (ISAAC's 64 KB eDRAM draws 20.7 mW), not a derived figure.
====================  ==========  ============================================================================

Override any entry with a JSON object (``--energy table.json``), e.g. ``{"adc_8bit_pj": 2.0}``.
"""

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from hw.checks import check_float, check_int

__all__ = ["EnergyTable", "SOURCES"]

SOURCES = {
    "adc_8bit_pj": "ISAAC (ISCA 2016) 8-bit 1.28 GS/s ADC, scaled 2**(bits-8) for other resolutions",
    "dac_pj": "ISAAC 1-bit DAC: 4 mW / 1024 DACs x 100 ns",
    "cell_read_pj": "ISAAC 128x128 crossbar: 0.3 mW x 100 ns / 16384 cells",
    "shift_add_pj": "ISAAC shift-and-add: 0.2 mW / 4 units / 1.28 GHz",
    "buffer_byte_pj": "assumption: small on-chip SRAM/eDRAM access per byte at 32 nm",
}


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation in picojoules (see the module docstring for the sources)."""

    adc_8bit_pj: float = 1.67
    dac_pj: float = 0.39
    cell_read_pj: float = 0.0018
    shift_add_pj: float = 0.039
    buffer_byte_pj: float = 1.0

    def __post_init__(self):
        for f in fields(self):
            value = check_float(f"EnergyTable.{f.name}", getattr(self, f.name), 0, allowed="a finite number ≥ 0 (pJ)")
            object.__setattr__(self, f.name, value)

    def adc_pj(self, bits: int) -> float:
        """Energy of one ``bits``-bit conversion: ``adc_8bit_pj · 2**(bits - 8)``; ``bits`` 1 … 32 (a lossless ADC of a
        very tall OU may need more than the tile's 16)."""
        bits = check_int("adc_bits", bits, 1, 32)
        return self.adc_8bit_pj * 2.0 ** (bits - 8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, path) -> "EnergyTable":
        """Defaults overridden by the entries of a JSON object file; unknown keys raise ``ValueError``."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"energy table {path}: {error}") from None
        except UnicodeDecodeError:
            raise ValueError(f"energy table {path}: not UTF-8 text: allowed a JSON object") from None
        if not isinstance(data, dict):
            raise ValueError(f"energy table {path}: expected a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"energy table {path}: unknown entries {', '.join(unknown)}: allowed {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except TypeError as error:   # a file's bad entry is a bad value, like any other
            raise ValueError(f"energy table {path}: {error}") from None
