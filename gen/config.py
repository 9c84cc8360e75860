"""Validated, immutable parameter sets (one dataclass per kind of design) and the TOML presets in ``gen/configs/``.

Every config class derives from :class:`ConfigBase`, which gives it the field checks with uniform error messages,
``to_dict``/``from_dict``, typed ``field=value`` overrides, ``derived()`` and ``summary()``. A preset file may
name its kind with a top-level ``kind = "..."`` key (default ``"systolic"``); :data:`CONFIG_KINDS` maps each kind
to its class, imported lazily so that loading a config never imports Amaranth.
"""

import dataclasses
import importlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from hw import checks

__all__ = ["ConfigBase", "ArrayConfig", "BLOCKS", "OVERFLOW_MODES", "MAX_K_LIMIT", "CONFIG_KINDS", "PRESETS_DIR", "config_class", "list_presets",
           "load_config", "parse_override", "preset_kind"]

PRESETS_DIR = Path(__file__).parent / "configs"

BLOCKS = (1, 2, 4, 8, 16)
OVERFLOW_MODES = ("check", "wrap", "saturate")
MAX_K_LIMIT = 2**20
_NAME_MAX_LEN = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# IEEE 1800-2017 reserved words (a superset of IEEE 1364-2005): Verilator reads `.v` files as SystemVerilog.
_VERILOG_KEYWORDS = frozenset("""
    accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before begin bind
    bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class clocking cmos config
    const constraint context continue cover covergroup coverpoint cross deassign default defparam design disable
    dist do edge else end endcase endchecker endclass endclocking endconfig endfunction endgenerate endgroup
    endinterface endmodule endpackage endprimitive endprogram endproperty endspecify endsequence endtable endtask
    enum event eventually expect export extends extern final first_match for force foreach forever fork forkjoin
    function generate genvar global highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies import
    incdir include initial inout input inside instance int integer interconnect interface intersect join join_any
    join_none large let liblist library local localparam logic longint macromodule matches medium modport module
    nand negedge nettype new nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed
    parameter pmos posedge primitive priority program property protected pull0 pull1 pulldown pullup
    pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real realtime ref reg
    reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1 s_always s_eventually s_nexttime
    s_until s_until_with scalared sequence shortint shortreal showcancelled signed small soft solve specify
    specparam static string strong strong0 strong1 struct super supply0 supply1 sync_accept_on sync_reject_on table
    tagged task this throughout time timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg
    type typedef union unique unique0 unsigned until until_with untyped use uwire var vectored virtual void wait
    wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
""".split())


class ConfigBase:
    """Shared behaviour of the frozen config dataclasses.

    A subclass is a ``@dataclass(frozen=True)`` that sets :attr:`kind` (its key in :data:`CONFIG_KINDS`) and
    :attr:`DERIVED` (names of properties reported by :meth:`derived`), validates in ``__post_init__`` with the
    ``_check_*`` helpers (:mod:`hw.checks`: ``TypeError`` for a wrong type, ``ValueError`` for a bad value; numpy
    scalars are accepted and stored as plain ``int``/``float``/``bool``), and defines the ``top`` property (the
    Verilog module name). Error messages all read ``<Class>.<field> = <value> <problem>: allowed <range>``.
    """

    kind: ClassVar[str] = ""
    DERIVED: ClassVar[tuple[str, ...]] = ()

    def _fail(self, field, problem):
        raise ValueError(f"{type(self).__name__}.{field} = {getattr(self, field)!r} {problem}")

    def _qualified(self, field):
        return f"{type(self).__name__}.{field}"

    def _store(self, field, value):
        # numpy scalars are accepted and stored as plain Python values (the dataclass is frozen)
        object.__setattr__(self, field, value)

    def _check_int(self, field, lo, hi, *, low=None, high=None):
        self._store(field, checks.check_int(self._qualified(field), getattr(self, field), lo, hi,
                                            allowed=f"{low or lo} … {high or hi}"))

    def _check_float(self, field, lo, hi):
        self._store(field, checks.check_float(self._qualified(field), getattr(self, field), lo, hi,
                                              allowed=f"{lo} … {hi}"))

    def _check_bool(self, field):
        self._store(field, checks.check_bool(self._qualified(field), getattr(self, field)))

    def _check_choice(self, field, choices):
        self._store(field, checks.check_choice(self._qualified(field), getattr(self, field), choices))

    def _check_name(self, field="name"):
        name = checks.check_str(self._qualified(field), getattr(self, field), "a Verilog identifier")
        if not _IDENTIFIER.fullmatch(name):
            self._fail(field, "is not a Verilog identifier: allowed letters, digits, _ and $, "
                              "starting with a letter or _")
        if len(name) > _NAME_MAX_LEN:
            self._fail(field, f"is too long ({len(name)} characters): allowed at most {_NAME_MAX_LEN}")
        if name in _VERILOG_KEYWORDS:
            self._fail(field, "is a Verilog keyword: allowed any other identifier")

    @property
    def top(self) -> str:
        raise NotImplementedError

    def derived(self) -> dict:
        """The derived values named by :attr:`DERIVED`, plus ``top``, as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.DERIVED} | {"top": self.top}

    def summary(self) -> str:
        """A one-line description for ``sparsegen presets``."""
        return self.top

    def to_dict(self) -> dict:
        """All fields as a JSON-ready dict; ``type(cfg).from_dict(cfg.to_dict()) == cfg``."""
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, data: Mapping):
        """Build a config from a mapping of field names to values; missing fields take their defaults.

        Raises
        ------
        ValueError
            If ``data`` has keys that are not fields, or a value is invalid.
        """
        names = cls.field_names()
        unknown = [key for key in data if key not in names]
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {', '.join(map(repr, unknown))}: "
                             f"valid fields are {', '.join(names)}")
        return cls(**data)


class ArrayConfig(ConfigBase):
    """Base of the configs that contain one ``rows × cols`` N:M array: its field checks and derived values.

    Subclasses declare the fields ``rows``, ``cols``, ``act_bits``, ``act_signed``, ``weight_bits``, ``acc_bits``,
    ``keep`` and ``block`` and call :meth:`_check_array` first in ``__post_init__``.
    """

    def _check_array(self):
        self._check_int("rows", 1, 64)
        self._check_int("cols", 1, 64)
        self._check_int("act_bits", 2, 16)
        self._check_bool("act_signed")
        self._check_int("weight_bits", 2, 16)
        self._check_int("acc_bits", 4, 64)
        self._check_int("block", 1, 16)
        if self.block not in BLOCKS:
            self._fail("block", "is not allowed: allowed 1, 2, 4, 8 or 16")
        self._check_int("keep", 1, self.block, high=f"{self.block} (block)")

    @property
    def k(self) -> int:
        """Reduction length the array covers: ``rows · block``."""
        return self.rows * self.block

    @property
    def sparse(self) -> bool:
        """``keep < block``: weights carry in-block indices."""
        return self.keep < self.block

    @property
    def index_bits(self) -> int:
        """Width of a weight's in-block index: ``log2(block)`` when sparse, 0 when dense."""
        return self.block.bit_length() - 1 if self.sparse else 0

    @property
    def multipliers(self) -> int:
        """Number of multipliers: ``rows · cols · keep``."""
        return self.rows * self.cols * self.keep

    @property
    def weight_entry_bits(self) -> int:
        """Width of one compressed weight entry: ``weight_bits + index_bits``."""
        return self.weight_bits + self.index_bits

    def _check_accumulator(self, max_k):
        """With ``overflow = "check"``: ``acc_bits`` must hold the worst-case sum of a ``max_k``-long reduction."""
        # Imported here, not at module level: the golden models may themselves import this module.
        from hw.formats.nm import required_acc_bits

        needed = required_acc_bits(max_k=max_k, keep=self.keep, block=self.block, act_bits=self.act_bits,
                                   act_signed=self.act_signed, weight_bits=self.weight_bits)
        if self.acc_bits < needed:
            products = -(-max_k // self.block) * self.keep
            signedness = "signed" if self.act_signed else "unsigned"
            lower_max_k = ", lower max_k" if max_k > self.k else ""
            self._fail("acc_bits",
                       f"cannot hold the worst-case sum of {products} products of {self.act_bits}-bit {signedness} "
                       f"activations and {self.weight_bits}-bit weights (needs >= {needed} bits for "
                       f"max_k = {max_k}); raise acc_bits{lower_max_k}, or set overflow = \"wrap\" or "
                       f"\"saturate\"")


def _parse_int(text):
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError("expected an int such as 8 or 0x10") from None


def _parse_bool(text):
    try:
        return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}[text.lower()]
    except KeyError:
        raise ValueError("expected true/false, yes/no or 1/0") from None


def _parse_float(text):
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number such as 0.05 or 1e-3") from None


def _parse_optional(parse):
    return lambda text: None if text.lower() == "none" else parse(text)


_PARSERS = {int: _parse_int, int | None: _parse_optional(_parse_int), bool: _parse_bool, str: str,
            str | None: str, float: _parse_float, float | None: _parse_optional(_parse_float)}

# kind → (module, class). Classes are imported on first use, so gen.config never imports Amaranth.
CONFIG_KINDS = {
    "systolic": ("gen.systolic.config", "SystolicConfig"),
    "gemm": ("gen.gemm.config", "GemmConfig"),
    "rram": ("gen.rram.config", "RramTileConfig"),
}


def config_class(kind: str) -> type:
    """The config class registered for ``kind`` in :data:`CONFIG_KINDS`."""
    checks.check_str("kind", kind, ", ".join(map(repr, CONFIG_KINDS)))
    if kind not in CONFIG_KINDS:
        raise ValueError(f"unknown config kind {kind!r}: allowed {', '.join(map(repr, CONFIG_KINDS))}")
    module, name = CONFIG_KINDS[kind]
    return getattr(importlib.import_module(module), name)


def parse_override(text: str, cls: type | None = None) -> tuple[str, object]:
    """Parse ``"field=value"`` into ``(field, value)``, the value converted to the field's type in ``cls``
    (default: the systolic array's config).

    ints accept Python literals (``16``, ``0x10``, ``0b1_0000``); bools ``true``/``false``, ``yes``/``no``,
    ``1``/``0`` (any case); floats Python literals; optional fields also ``none``; strings are taken as written.
    Whitespace around the field and the value is ignored. The value is not range-checked here.

    Raises
    ------
    ValueError
        If ``text`` has no ``=``, names no field, or its value does not parse as the field's type.
    """
    cls = config_class("systolic") if cls is None else cls
    parsers = {field.name: _PARSERS[field.type] for field in dataclasses.fields(cls)}
    checks.check_str("override", text, "a 'field=value' string")
    field, sep, value = text.partition("=")
    field, value = field.strip(), value.strip()
    if not sep:
        raise ValueError(f"override {text!r} is not of the form field=value")
    if field not in parsers:
        raise ValueError(f"override {text!r} names no field {field!r}: valid fields are {', '.join(parsers)}")
    try:
        return field, parsers[field](value)
    except ValueError as error:
        raise ValueError(f"override {text!r}: cannot parse {value!r} for {cls.__name__}.{field}: {error}") from None


def _read_toml(path, text):
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ValueError(f"cannot read config file {text!r}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {text!r} is not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"config file {text!r} is not valid TOML: not UTF-8 text") from None


def preset_kind(preset: str) -> str:
    """The ``kind`` a preset file declares (``"systolic"`` when it declares none)."""
    return _read_toml(PRESETS_DIR / f"{preset}.toml", preset).get("kind", "systolic")


def list_presets(kind: str | None = None) -> list[str]:
    """Names of the presets in :data:`PRESETS_DIR`, sorted; only those of ``kind`` when given."""
    names = sorted(path.stem for path in PRESETS_DIR.glob("*.toml"))
    return names if kind is None else [name for name in names if preset_kind(name) == kind]


def load_config(preset_or_path: str | os.PathLike,
                overrides: Mapping[str, object] | Iterable[str] | None = None):
    """Load a preset or a TOML file, apply overrides, and validate.

    Parameters
    ----------
    preset_or_path : str or path-like
        A preset name (see :func:`list_presets`), or the path of a TOML file: a path-like object, or a
        string that ends in ``.toml`` or contains a ``/``. The file is one flat table of field names, plus an
        optional ``kind`` key selecting the config class (:data:`CONFIG_KINDS`; default ``"systolic"``).
    overrides : mapping or iterable of str, optional
        Field values that replace the file's, as a mapping of typed values or as ``"field=value"`` strings
        (see :func:`parse_override`); later strings win. Derived fields the file leaves out (e.g. ``max_k``,
        ``name``) follow the overridden parameters.

    Returns
    -------
    An instance of the kind's config class (:class:`SystolicConfig` for plain array presets).

    Raises
    ------
    ValueError
        If the preset does not exist, the file cannot be read or parsed, the kind is unknown, an override is
        malformed, or a field value is invalid.
    TypeError
        If an argument or a field value has the wrong type.
    """
    if not isinstance(preset_or_path, (str, os.PathLike)):
        checks.fail("preset_or_path", preset_or_path, f"is a {type(preset_or_path).__name__}, not a str",
                    "a preset name or the path of a .toml file", exc=TypeError)
    if not (overrides is None or isinstance(overrides, Mapping)
            or (isinstance(overrides, Iterable) and not isinstance(overrides, (str, bytes)))):
        checks.fail("overrides", overrides, f"is a {type(overrides).__name__}",
                    "a mapping of field values or a list of 'field=value' strings", exc=TypeError)
    text = os.fspath(preset_or_path)
    if isinstance(preset_or_path, os.PathLike) or text.endswith(".toml") or "/" in text or os.sep in text:
        path = Path(text)
    elif text in list_presets():
        path = PRESETS_DIR / f"{text}.toml"
    else:
        raise ValueError(f"unknown preset {text!r}: available presets are {', '.join(list_presets())} "
                         f"(or give the path of a .toml file)")
    data = _read_toml(path, text)
    if not data:    # an empty or truncated file would silently be the default design
        raise ValueError(f"config file {text!r} is empty: allowed a table of fields (an explicit kind = \"...\" "
                         "alone selects every default)")
    cls = config_class(data.pop("kind", "systolic"))
    if isinstance(overrides, Mapping):
        data.update(overrides)
    elif overrides is not None:
        data.update(parse_override(override, cls) for override in overrides)
    return cls.from_dict(data)
