"""Validated, immutable parameter sets (one dataclass per kind of design) and the TOML presets in ``gen/configs/``.

Every config class derives from :class:`ConfigBase`. Each field is declared once, with :func:`param`: its type
(the annotation), its default and what it allows (a range or choices, :class:`Allowed`). That one declaration is
what the validator checks, what its messages say and what the ``allowed`` column of the docs' config tables must
say (``tests/test_config_docs.py``). ``ConfigBase`` also gives ``to_dict``/``from_dict``, typed ``field=value``
overrides, ``derived()`` and ``summary()``. A preset file may name its kind with a top-level ``kind = "..."`` key
(default ``"systolic"``) and extend another preset with ``base = "<preset>"``; :data:`CONFIG_KINDS` maps each kind
to its class, imported lazily so that loading a config never imports Amaranth.
"""

import abc
import dataclasses
import importlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar, get_args

from hw import checks
from hw.checks import check_bool, check_choice, check_float, check_int, check_str, fail
from hw.formats.ints import OVERFLOW_MODES, hw_overflow
from hw.formats.nm import BLOCKS, required_acc_bits

__all__ = ["ConfigBase", "ArrayConfig", "ARRAY_FIELDS", "Allowed", "param", "BLOCKS", "OVERFLOW_MODES",
           "MAX_K_LIMIT", "CONFIG_KINDS", "PRESETS_DIR", "config_class", "list_presets", "load_config",
           "parse_override", "preset_kind"]

PRESETS_DIR = Path(__file__).parent / "configs"

MAX_K_LIMIT = 2**20
_NAME_MAX_LEN = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NAMES = re.compile(r"[A-Za-z_]\w*")
_BOUND_FUNCTIONS = {"min": min, "max": max}
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


def _check_identifier(name, value):
    check_str(name, value, "a Verilog identifier")
    if not _IDENTIFIER.fullmatch(value):
        fail(name, value, "is not a Verilog identifier", "letters, digits, _ and $, starting with a letter or _")
    if len(value) > _NAME_MAX_LEN:
        fail(name, value, f"is too long ({len(value)} characters)", f"at most {_NAME_MAX_LEN}")
    if value in _VERILOG_KEYWORDS:
        fail(name, value, "is a Verilog keyword", "any other identifier")
    return value


def _field_type(annotation) -> tuple[type, bool]:
    """``(type, optional)`` of a field's annotation: ``int | None`` is ``(int, True)``, ``bool`` ``(bool, False)``."""
    args = get_args(annotation)
    if type(None) in args:
        [inner] = [arg for arg in args if arg is not type(None)]
        return inner, True
    return annotation, False


def _number_text(value, *, docs=False):
    """A bound as messages show it; ``docs``: large powers of two as the docs write them (``2**20``, ``2**32 - 1``)."""
    if isinstance(value, float):
        return repr(float(f"{value:.12g}"))   # 1.0 - 0.7 shows as 0.3
    if docs and value >= 2**20:
        for below in (0, 1, 2):
            if (value + below) & (value + below - 1) == 0:
                return f"2**{(value + below).bit_length() - 1}" + (f" - {below}" if below else "")
    return str(value)


@dataclasses.dataclass(frozen=True)
class Allowed:
    """What one config field allows: what the validator checks, its messages say and the docs' tables show.

    ``lo``/``hi`` bound a number: each a number, or an expression over the config's fields and properties written
    as the docs write it (``"block"``, ``"rows·block"``, ``"min(64, xbar_rows)"``, ``"1.0 - stuck_sa0"``; ``·``
    multiplies). ``choices`` lists the allowed values instead; ``identifier`` asks for a Verilog identifier.
    Booleans allow ``True`` and ``False``; an optional field (``int | None``) also ``None``.
    """

    lo: int | float | str | None = None
    hi: int | float | str | None = None
    choices: tuple = ()
    identifier: bool = False

    def names(self) -> set[str]:
        """The fields and properties the bounds name."""
        return {name for bound in (self.lo, self.hi) if isinstance(bound, str)
                for name in _NAMES.findall(bound)} - set(_BOUND_FUNCTIONS)

    def bound(self, config, bound):
        """The value of ``lo`` or ``hi`` for ``config``."""
        if not isinstance(bound, str):
            return bound
        names = {name: getattr(config, name) for name in _NAMES.findall(bound) if name not in _BOUND_FUNCTIONS}
        return eval(bound.replace("·", "*"), {"__builtins__": {}, **_BOUND_FUNCTIONS}, names)

    def _message_range(self, config):
        if self.lo is None or self.hi is None:
            return None
        shown = []
        for bound in (self.lo, self.hi):
            text = _number_text(self.bound(config, bound))
            shown.append(f"{text} ({bound})" if isinstance(bound, str) and _NAMES.search(bound) else text)
        return " … ".join(shown)

    def check(self, name: str, value, annotation, config):
        """``value`` checked against this and the field's type (``TypeError``/``ValueError`` naming ``name``);
        returns it as a plain Python value (numpy scalars become ``int``/``float``/``bool``)."""
        kind, optional = _field_type(annotation)
        if value is None and optional:
            return None
        if kind is bool:
            return check_bool(name, value)
        if self.choices:
            return check_choice(name, value, self.choices)
        if self.identifier:
            return _check_identifier(name, value)
        if kind is str:
            return check_str(name, value)
        check = check_float if kind is float else check_int
        return check(name, value, self.bound(config, self.lo), self.bound(config, self.hi),
                     allowed=self._message_range(config))

    def docs_text(self, annotation) -> str:
        """The docs' ``allowed`` text, without the backticks (``1 … 64``, ``None, or 2 … acc_bits``)."""
        kind, optional = _field_type(annotation)
        if kind is bool:
            text = "True, False"
        elif self.choices:
            text = ", ".join(f'"{choice}"' if isinstance(choice, str) else str(choice) for choice in self.choices)
        elif self.identifier:
            text = f"a Verilog identifier of at most {_NAME_MAX_LEN} characters that is not a keyword"
        else:
            text = " … ".join(bound if isinstance(bound, str) else _number_text(bound, docs=True)
                              for bound in (self.lo, self.hi))
        return ("None, or " if optional else "") + text


def param(default, lo=None, hi=None, *, choices=(), identifier=False):
    """A config field: its default and what it allows (see :class:`Allowed`); the annotation gives its type."""
    return dataclasses.field(default=default, metadata={"allowed": Allowed(lo, hi, tuple(choices), identifier)})


class ConfigBase(abc.ABC):
    """Shared behaviour of the frozen config dataclasses.

    A subclass is a ``@dataclass(frozen=True, kw_only=True)`` whose fields are declared with :func:`param`; it sets
    :attr:`kind` (its key in :data:`CONFIG_KINDS`), :attr:`DERIVED` (names of properties reported by
    :meth:`derived`) and :attr:`FIELD_RULES` (rules between fields, as the docs state them after a field's range;
    its ``__post_init__`` checks them after ``super().__post_init__()``), and defines the ``top`` property (the
    Verilog module name). Error messages all read ``<Class>.<field> = <value> <problem>: allowed <range>``:
    ``TypeError`` for a value of the wrong type, ``ValueError`` for a bad value.
    """

    kind: ClassVar[str] = ""
    DERIVED: ClassVar[tuple[str, ...]] = ()
    FIELD_RULES: ClassVar[dict[str, str]] = {}

    def __post_init__(self):
        # Field order, except that a field whose range names other fields is checked after them (keep after
        # block); values are stored as checked, so numpy scalars become plain Python values.
        fields = {field.name: field for field in dataclasses.fields(self)}
        checked = set()

        def check(name):
            if name in checked:
                return
            checked.add(name)
            allowed = fields[name].metadata["allowed"]
            for other in sorted(allowed.names() & fields.keys(), key=list(fields).index):
                check(other)
            value = allowed.check(f"{type(self).__name__}.{name}", getattr(self, name), fields[name].type, self)
            object.__setattr__(self, name, value)

        for name in fields:
            check(name)

    def _fail(self, field, problem, allowed=None):
        fail(f"{type(self).__name__}.{field}", getattr(self, field), problem, allowed)

    @property
    @abc.abstractmethod
    def top(self) -> str:
        """Verilog top-module name."""

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
    def allowed_text(cls, name: str) -> str:
        """The docs' ``allowed`` text of field ``name``: its declared range, then its rule from :attr:`FIELD_RULES`."""
        field = next(field for field in dataclasses.fields(cls) if field.name == name)
        rule = cls.FIELD_RULES.get(name)
        return field.metadata["allowed"].docs_text(field.type) + (f"; {rule}" if rule else "")

    @classmethod
    def from_dict(cls, data: Mapping):
        """Build a config from a mapping of field names to values; missing fields take their defaults.

        Raises
        ------
        ValueError
            If ``data`` has keys that are not fields, or a value is invalid.
        TypeError
            If a value has the wrong type.
        """
        names = cls.field_names()
        unknown = [key for key in data if key not in names]
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {', '.join(map(repr, unknown))}: "
                             f"valid fields are {', '.join(names)}")
        return cls(**data)


class ArrayConfig(ConfigBase):
    """Base of the configs that contain one ``rows × cols`` N:M array: the array's fields, declared once here,
    its accumulator rule and its derived values.

    A subclass declares only its own fields. They follow the shared field named by the class keyword
    ``fields_after`` (default: after all of them), e.g. ``class SystolicConfig(ArrayConfig, fields_after="block")``,
    so that each class keeps its documented field order, which is also the order of ``to_dict()`` and of the
    manifests.
    """

    rows: int = param(4, 1, 128)
    cols: int = param(4, 1, 128)
    act_bits: int = param(8, 2, 16)
    act_signed: bool = param(True)
    weight_bits: int = param(8, 2, 16)
    acc_bits: int = param(32, 4, 64)
    keep: int = param(2, 1, "block")
    block: int = param(4, choices=BLOCKS)
    overflow: str = param("check", choices=OVERFLOW_MODES)
    counter_bits: int = param(32, 16, 64)
    pe_pipeline: int = param(0, 0, 4)
    name: str | None = param(None, identifier=True)

    def __init_subclass__(cls, fields_after="name", **kwargs):
        super().__init_subclass__(**kwargs)
        if ArrayConfig not in cls.__bases__:   # a subclass of a config class inherits its dataclass fields
            return
        shared = ArrayConfig.__dict__["__annotations__"]
        names = list(shared)
        cut = names.index(fields_after) + 1
        cls.__annotations__ = ({name: shared[name] for name in names[:cut]} | cls.__dict__.get("__annotations__", {})
                               | {name: shared[name] for name in names[cut:]})
        for name in names:   # a Field of its own per class: dataclass() writes the field's name and type into it
            spec = ArrayConfig.__dict__[name]
            setattr(cls, name, dataclasses.field(default=spec.default, metadata=spec.metadata))

    def array_params(self) -> dict:
        """The array component's parameters: the shared fields but ``name``, with ``overflow`` as the adders' mode."""
        return ({name: getattr(self, name) for name in ARRAY_FIELDS if name != "name"}
                | {"overflow": hw_overflow(self.overflow)})

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

    def _check_accumulator(self, max_k, keep=None):
        """With ``overflow = "check"``: ``acc_bits`` must hold the worst-case sum of a ``max_k``-long reduction with
        at most ``keep`` (default: the config's ``keep``) products per K-block."""
        keep = self.keep if keep is None else keep
        needed = required_acc_bits(max_k=max_k, keep=keep, block=self.block, act_bits=self.act_bits,
                                   act_signed=self.act_signed, weight_bits=self.weight_bits)
        if self.acc_bits < needed:
            products = -(-max_k // self.block) * keep
            signedness = "signed" if self.act_signed else "unsigned"
            lower_max_k = ", lower max_k" if max_k > self.k else ""
            self._fail("acc_bits",
                       f"cannot hold the worst-case sum of {products} products of {self.act_bits}-bit {signedness} "
                       f"activations and {self.weight_bits}-bit weights (needs >= {needed} bits for "
                       f"max_k = {max_k}); raise acc_bits{lower_max_k}, or set overflow = \"wrap\" or "
                       f"\"saturate\"")


ARRAY_FIELDS = tuple(ArrayConfig.__dict__["__annotations__"])
"""The array fields every :class:`ArrayConfig` shares, in their order."""


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


def _is_path(text: str) -> bool:
    return text.endswith(".toml") or "/" in text or os.sep in text


def _read_preset(path: Path, text: str, chain: tuple = ()) -> dict:
    """The flat table of a config file with its ``base`` chain resolved: the base's keys, then the file's own.

    ``base`` is a preset name, or the path of a TOML file relative to the file that names it.
    """
    data = _read_toml(path, text)
    if not data:    # an empty or truncated file would silently be the default design
        raise ValueError(f"config file {text!r} is empty: allowed a table of fields (an explicit kind = \"...\" "
                         "alone selects every default)")
    if "base" not in data:
        return data
    base = data.pop("base")
    chain = (*chain, (path.resolve(), text))
    allowed = "a preset name or the path of a .toml file"
    if not isinstance(base, str):
        raise ValueError(f"config file {text!r}: base = {base!r} is a {type(base).__name__}, not a str: "
                         f"allowed {allowed}")
    if _is_path(base):
        base_path = path.parent / base
    elif base in list_presets():
        base_path = PRESETS_DIR / f"{base}.toml"
    else:
        raise ValueError(f"config file {text!r}: base = {base!r} is not a preset: allowed "
                         f"{', '.join(list_presets())}, or the path of a .toml file")
    if base_path.resolve() in [seen for seen, _ in chain]:
        cycle = " → ".join(name for _, name in chain)
        raise ValueError(f"config file {text!r}: base = {base!r} makes a cycle ({cycle} → {base}): allowed a chain "
                         f"of bases that ends in a file without one")
    return _read_preset(base_path, base, chain) | data


def preset_kind(preset: str) -> str:
    """The ``kind`` a preset file declares or inherits from its base (``"systolic"`` when none does)."""
    return _read_preset(PRESETS_DIR / f"{preset}.toml", preset).get("kind", "systolic")


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
        optional ``kind`` key selecting the config class (:data:`CONFIG_KINDS`; default ``"systolic"``) and an
        optional ``base`` key naming the preset (or the path, relative to this file, of the TOML file) it
        extends: the base's keys (resolved the same way) apply first, then this file's.
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
        If the preset or a base does not exist, the bases form a cycle, a file cannot be read or parsed, the kind
        is unknown, an override is malformed, or the resulting config is invalid. A value of the wrong type is a
        ``ValueError`` here too: it comes from a file or the command line, not from a caller's argument.
    """
    if not isinstance(preset_or_path, (str, os.PathLike)):
        checks.fail("preset_or_path", preset_or_path, f"is a {type(preset_or_path).__name__}, not a str",
                    "a preset name or the path of a .toml file", exc=TypeError)
    if not (overrides is None or isinstance(overrides, Mapping)
            or (isinstance(overrides, Iterable) and not isinstance(overrides, (str, bytes)))):
        checks.fail("overrides", overrides, f"is a {type(overrides).__name__}",
                    "a mapping of field values or a list of 'field=value' strings", exc=TypeError)
    text = os.fspath(preset_or_path)
    if isinstance(preset_or_path, os.PathLike) or _is_path(text):
        path = Path(text)
    elif text in list_presets():
        path = PRESETS_DIR / f"{text}.toml"
    else:
        raise ValueError(f"unknown preset {text!r}: available presets are {', '.join(list_presets())} "
                         f"(or give the path of a .toml file)")
    data = _read_preset(path, text)
    cls = config_class(data.pop("kind", "systolic"))
    if isinstance(overrides, Mapping):
        data.update(overrides)
    elif overrides is not None:
        data.update(parse_override(override, cls) for override in overrides)
    try:
        return cls.from_dict(data)
    except TypeError as error:
        raise ValueError(str(error)) from None
