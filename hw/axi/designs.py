"""Which registers each design gets on the AXI4-Lite bus, derived from its signature and its ``hw/`` definitions.

:func:`register_map` is the one place that decides; :func:`axi_wrap` builds the wrapper from it.
"""

from amaranth.lib import wiring

from hw.axi.jobs import JobTracker
from hw.axi.regmap import Field, RegisterMapBuilder
from hw.axi.wrapper import AxiWrapper, stream_members
from hw.gemm.beats import ERROR_FIELDS, desc_layout
from hw.rram import beats as rram_beats

__all__ = ["register_map", "axi_wrap", "BUS_STREAMS", "REGFILE_PORTS"]

# streams a CPU drives through AXI4-Lite registers rather than AXI4-Stream: the GEMM engine's job descriptor
BUS_STREAMS = ("desc",)
# an indexed register block (address in, value out): the RRAM tile's
REGFILE_PORTS = ("reg_addr", "reg_data")


def _error_fields(width):
    return [Field(name, bit, 1, "r", f"descriptor field {name} was out of range") for bit, name in
            enumerate(ERROR_FIELDS[:width])]


def _status_fields():
    """The RRAM tile's STATUS bits (``rram_beats.STATUS_BITS``); the error code is as wide as the largest code."""
    code_bits = max(rram_beats.ERRORS).bit_length()
    what = {"busy": "an operation is in progress", "tables_valid": "valid tables are loaded",
            "fault_overflow": "the fault log dropped a failed cell",
            "error": "last error code (ERRORS; 0 = OK)"}
    return [Field(name, lsb, code_bits if name == "error" else 1, "r", what.get(name, name))
            for name, lsb in rram_beats.STATUS_BITS.items()]


def register_map(inner, *, name, meanings, config=None):
    """The :class:`~hw.axi.regmap.RegisterMap` of ``inner`` wrapped as module ``name``.

    ``meanings`` describes ``inner``'s ports (the generator's port meanings); ``config`` is needed for a design
    with a descriptor stream (its maxima go into the field descriptions).

    Raises
    ------
    ValueError
        ``inner`` has an interface member that is neither a stream nor a plain port.
    """
    b = RegisterMapBuilder(name)
    streams = stream_members(inner)
    for s in BUS_STREAMS:
        if s in streams:
            layout = desc_layout(config)
            maxima = {"m": config.max_m, "k": config.max_k, "n": config.max_n}
            b.stream(s, [(f, field.width, f"job {f.upper()} (1 … {maxima[f]})" if f in maxima else
                          f"requantization shift {f} (0 … acc_bits - 1)") for f, field in layout],
                     meanings.get(f"{s}__payload", s))
    regfile = all(p in inner.signature.members for p in REGFILE_PORTS)
    for port, member in inner.signature.members.items():
        if port in streams or (regfile and port in REGFILE_PORTS):
            continue
        if member.is_signature:
            raise ValueError(f"{type(inner).__name__}.{port} is an interface the AXI wrapper cannot map: "
                             f"allowed streams, plain ports and an indexed register block ({', '.join(REGFILE_PORTS)})")
        width = len(getattr(inner, port))
        if member.flow == wiring.In:
            b.value(port, width, meanings.get(port, port), ("input", port), access="rw")
            continue
        fields = _error_fields(width) if port == "error" else None
        b.value(port, width, meanings.get(port, port), ("port", port), fields)
    if regfile:
        width = len(getattr(inner, REGFILE_PORTS[1]))
        for index, (reg, what) in rram_beats.REGISTERS.items():
            b.value(reg, width, what, ("regfile", *REGFILE_PORTS, index),
                    _status_fields() if reg == "STATUS" else None)
    return b.build()


def axi_wrap(inner, *, name, meanings, config=None) -> AxiWrapper:
    """``inner`` behind AXI (:class:`~hw.axi.wrapper.AxiWrapper`) with :func:`register_map`'s map; a design with a
    bus-driven descriptor and a ``results`` stream gets a :class:`~hw.axi.jobs.JobTracker` for ``tlast``."""
    regmap = register_map(inner, name=name, meanings=meanings, config=config)
    streams = stream_members(inner)
    jobs = None
    if "desc" in streams and "results" in streams:
        jobs = (JobTracker(config), "desc", "results")
    return AxiWrapper(inner, regmap=regmap, jobs=jobs)
