"""The AXI4-Lite register map of a wrapped design: the one definition behind the RTL, the SystemRDL, the C header,
the manifest and docs/integration.md.

A map is derived from the wrapped component's signature and the register definitions the design already has in
``hw/`` (:data:`hw.gemm.front.COUNTERS`, :data:`hw.gemm.beats.ERROR_FIELDS`, :func:`hw.gemm.beats.desc_layout`,
:data:`hw.rram.beats.REGISTERS`, :data:`hw.rram.beats.STATUS_BITS`, :data:`hw.rram.beats.ERRORS`), never typed
again. Registers are 32 bits wide, at consecutive word offsets from 0 in the order they are added:

1. for a stream driven from the bus (the GEMM engine's ``desc``): ``<STREAM>_CTRL`` (write ``start``, read
   ``pending``), then one read-write register per top-level field of the stream's beat (``<STREAM>_<FIELD>``);
2. one register per plain (non-stream) port, in signature order: read-only for an output, read-write for an
   input (the register drives the port; 0 after reset); ``<PORT>``, or ``<PORT>_LO`` and ``<PORT>_HI`` when wider
   than 32 bits (the low and high words);
3. for a design with an indexed register block (the RRAM tile's ``reg_addr``/``reg_data``): one read-only
   register per entry, in address order (split into ``_LO``/``_HI`` likewise).

Every other offset in the window (``2**ADDR_BITS`` bytes) is unmapped: an access to it gets ``SLVERR``.
"""

from dataclasses import dataclass, field

__all__ = ["DATA_BITS", "ADDR_BITS", "Field", "Register", "RegisterMap", "RegisterMapBuilder"]

DATA_BITS = 32
ADDR_BITS = 12          # a 4 KiB window: one page, what interconnects and Linux UIO map per peripheral


@dataclass(frozen=True)
class Field:
    """Bits ``[lsb, lsb + width)`` of a register; ``access`` is the software access: ``"r"``, ``"w"`` or
    ``"rw"``."""
    name: str
    lsb: int
    width: int
    access: str
    desc: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """One 32-bit register at byte ``offset``.

    ``source`` says what the wrapper connects it to: ``("ctrl", stream)``, ``("field", stream, field)``,
    ``("port", port, word)`` (bits ``[32·word, 32·word + 32)`` of an output port), ``("input", port, word)`` (the
    same bits of an input port, driven by the register) or ``("regfile", addr_port, data_port, index, word)``.
    """
    name: str
    offset: int
    desc: str
    fields: tuple
    source: tuple

    @property
    def access(self) -> str:
        """``"r"``, ``"w"`` or ``"rw"``: the union of its fields' access."""
        kinds = {a for f in self.fields for a in f.access}
        return "".join(a for a in "rw" if a in kinds)

    @property
    def writable(self) -> bool:
        return "w" in self.access


@dataclass(frozen=True)
class RegisterMap:
    """The registers of one wrapped design (``name``: the wrapped top module)."""
    name: str
    registers: tuple
    data_bits: int = DATA_BITS
    addr_bits: int = ADDR_BITS

    def __getitem__(self, name) -> Register:
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"register {name!r} not in {self.name}: registers are "
                       f"{', '.join(r.name for r in self.registers)}")

    def at(self, offset):
        """The register at byte ``offset``, or ``None`` (unmapped)."""
        return next((reg for reg in self.registers if reg.offset == offset), None)

    def to_dict(self) -> dict:
        """JSON-ready: data and address width, every register with offset, access and fields."""
        return {"data_bits": self.data_bits, "addr_bits": self.addr_bits, "unmapped": "SLVERR, nothing written",
                "registers": [{"name": r.name, "offset": r.offset, "access": r.access, "desc": r.desc,
                               "fields": [{"name": f.name, "lsb": f.lsb, "width": f.width, "access": f.access,
                                           "desc": f.desc} for f in r.fields]} for r in self.registers]}


@dataclass
class RegisterMapBuilder:
    """Adds registers at consecutive word offsets (module docstring); :meth:`build` returns the map."""
    name: str
    registers: list = field(default_factory=list)

    def _add(self, name, desc, fields, source):
        offset = 4 * len(self.registers)
        if offset >= 1 << ADDR_BITS:
            raise ValueError(f"{self.name}: {len(self.registers) + 1} registers do not fit the "
                             f"{1 << ADDR_BITS}-byte AXI-Lite window: allowed {(1 << ADDR_BITS) // 4}")
        self.registers.append(Register(name.upper(), offset, desc, tuple(fields), source))

    def stream(self, stream, fields, desc):
        """A stream driven from the bus: ``fields`` is ``[(name, width, desc)]`` of the beat's top-level fields."""
        self._add(f"{stream}_ctrl", f"{desc}: write start = 1 to send the {stream} beat held in the {stream.upper()}_* "
                                    f"registers; pending = 1 until the design has taken it",
                  [Field("start", 0, 1, "w", f"write 1: send the {stream} beat (SLVERR while pending)"),
                   Field("pending", 1, 1, "r", f"a {stream} beat is waiting to be taken by the design")],
                  ("ctrl", stream))
        for name, width, what in fields:
            if width > DATA_BITS:
                raise ValueError(f"{stream}.{name} = {width} bits does not fit one register: allowed 1 … {DATA_BITS}")
            self._add(f"{stream}_{name}", what, [Field("value", 0, width, "rw", what)], ("field", stream, name))

    def value(self, name, width, desc, source, fields=None, *, access="r"):
        """A value ``width`` bits wide, read-only or (``access="rw"``) read-write, split into ``_LO``/``_HI``
        (above 64 bits ``_W<i>``) words above 32 bits; ``fields`` (``[Field]``, for a value of at most 32 bits)
        name its bits, else one field ``value``."""
        words = -(-width // DATA_BITS)
        for word in range(words):
            bits = min(DATA_BITS, width - DATA_BITS * word)
            suffix = "" if words == 1 else ("_lo", "_hi")[word] if words == 2 else f"_w{word}"
            what = desc if words == 1 else f"{desc} (bits {DATA_BITS * word + bits - 1}:{DATA_BITS * word})"
            self._add(f"{name}{suffix}", what, fields if fields and words == 1 else
                      [Field("value", 0, bits, access, what)], (*source, word))

    def build(self) -> RegisterMap:
        return RegisterMap(self.name, tuple(self.registers))
