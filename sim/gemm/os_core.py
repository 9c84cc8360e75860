"""Parameter sets of the output-stationary core for tests and benchmarks: build it, or get its Verilog (cached).

The OS core is a leaf component without a config kind of its own (the GEMM engine with ``dataflow = "os"`` wraps
it), so tests describe it with :class:`OSCoreParams`, which carries exactly the keyword arguments of
:class:`hw.gemm.os_array.SparseOSArray`.
"""

import dataclasses
from dataclasses import dataclass

from hw.gemm.os_array import SparseOSArray

from sim.common.designs import verilog_for_component

__all__ = ["OSCoreParams", "build_os_array", "os_verilog_for"]


@dataclass(frozen=True)
class OSCoreParams:
    """Keyword arguments of :class:`SparseOSArray` (checked by its constructor), plus a Verilog top name."""
    rows: int
    cols: int
    keep: int
    block: int
    act_bits: int = 8
    act_signed: bool = True
    weight_bits: int = 8
    acc_bits: int = 32
    overflow: str = "wrap"
    counter_bits: int = 32
    pe_pipeline: int = 0

    @property
    def top(self):
        """Verilog module name, unique per parameter set."""
        sign = "s" if self.act_signed else "u"
        return (f"os_{self.rows}x{self.cols}_{self.keep}of{self.block}_{sign}{self.act_bits}w{self.weight_bits}"
                f"_acc{self.acc_bits}_{self.overflow}_cnt{self.counter_bits}"
                + (f"_p{self.pe_pipeline}" if self.pe_pipeline else ""))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    def verilog(self):
        """Path of the core's cached Verilog (:func:`os_verilog_for`)."""
        return os_verilog_for(self)


def build_os_array(p):
    """The :class:`SparseOSArray` for ``p``."""
    return SparseOSArray(**p.to_dict())


def os_verilog_for(p):
    """Path of the cached Verilog of the core for ``p`` (module name ``p.top``)."""
    return verilog_for_component(p.top, SparseOSArray, p.to_dict())
