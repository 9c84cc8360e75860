"""SystolicConfig validation, presets, overrides and TOML loading (gen/config.py)."""

import dataclasses
import re
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.config import (CONFIG_KINDS, PRESETS_DIR, ConfigBase, list_presets, load_config, param, parse_override,
                        preset_kind)
from gen.gemm.config import GemmConfig
from gen.systolic.config import SystolicConfig

PRESETS = {
    "dense_4x4": dict(rows=4, cols=4, keep=1, block=1, act_signed=True),
    "dense_8x8": dict(rows=8, cols=8, keep=1, block=1, act_signed=True, pe_pipeline=3),
    "dense_8x8_4of4": dict(rows=8, cols=8, keep=4, block=4, act_signed=True),
    "ssa_8x8_2of4": dict(rows=8, cols=8, keep=2, block=4, act_signed=True),
    "ssa_8x8_1of4": dict(rows=8, cols=8, keep=1, block=4, act_signed=True),
    "ssa_4x8_2of4": dict(rows=4, cols=8, keep=2, block=4, act_signed=False),
    "ssa_16x16_2of4": dict(rows=16, cols=16, keep=2, block=4, act_signed=True),
}
FIELDS = [field.name for field in dataclasses.fields(SystolicConfig)]
KEYWORDS = ["module", "wire", "reg", "input", "logic", "always_ff", "endmodule", "assign"]


def needed_acc_bits(*, max_k, keep, block, act_bits, act_signed, weight_bits):
    """Independent of the generator: widen until both extreme sums of the worst-case product count fit."""
    terms = -(-max_k // block) * keep
    acts = (-(2 ** (act_bits - 1)), 2 ** (act_bits - 1) - 1) if act_signed else (0, 2**act_bits - 1)
    weights = (-(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1) - 1)
    products = [a * w for a in acts for w in weights]
    lo, hi = terms * min(products), terms * max(products)
    bits = 1
    while not -(2 ** (bits - 1)) <= lo <= hi <= 2 ** (bits - 1) - 1:
        bits += 1
    return bits


def is_int(value):
    return type(value) is int


def is_valid(d):
    """Independent validity predicate for SystolicConfig(**d), straight from the README table."""
    c = {field.name: field.default for field in dataclasses.fields(SystolicConfig)} | d
    ranges = dict(rows=(1, 64), cols=(1, 64), act_bits=(2, 16), weight_bits=(2, 16), acc_bits=(4, 64),
                  counter_bits=(16, 64), pe_pipeline=(0, 4))
    if not all(is_int(c[f]) and lo <= c[f] <= hi for f, (lo, hi) in ranges.items()):
        return False
    if type(c["act_signed"]) is not bool or c["overflow"] not in ("check", "wrap", "saturate"):
        return False
    if not (is_int(c["block"]) and c["block"] in (1, 2, 4, 8, 16)
            and is_int(c["keep"]) and 1 <= c["keep"] <= c["block"]):
        return False
    max_k = c["rows"] * c["block"] if c["max_k"] is None else c["max_k"]
    if not (is_int(max_k) and c["rows"] * c["block"] <= max_k <= 2**20):
        return False
    name = c["name"]
    if name is not None and not (type(name) is str and len(name) <= 64 and name not in KEYWORDS
                                 and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name)):  # see wild()
        return False
    return c["overflow"] != "check" or c["acc_bits"] >= needed_acc_bits(
        max_k=max_k, keep=c["keep"], block=c["block"], act_bits=c["act_bits"], act_signed=c["act_signed"],
        weight_bits=c["weight_bits"])


# ---- presets ---------------------------------------------------------------------------------------------

def test_preset_list():
    assert list_presets("systolic") == sorted(PRESETS)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_loads(preset):
    config = load_config(preset)
    assert {field: getattr(config, field) for field in PRESETS[preset]} == PRESETS[preset]
    assert (config.act_bits, config.weight_bits, config.acc_bits, config.overflow) == (8, 8, 32, "check")
    assert config.max_reduction == config.k
    assert config.top == SystolicConfig(**PRESETS[preset]).top


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_file_style(preset):
    lines = (PRESETS_DIR / f"{preset}.toml").read_text().splitlines()
    assert lines[0].startswith("# ") and not any(line.startswith("#") for line in lines[1:])
    assert not any(line.split("=")[0].strip() in ("name", "max_k") for line in lines), \
        "presets leave name and max_k derived so that overrides update them"


def test_derived_name():
    assert SystolicConfig(rows=8, cols=8).top == "ssa_8x8_2of4_s8w8acc32"
    assert SystolicConfig(rows=4, cols=8, act_signed=False, act_bits=4).top == "ssa_4x8_2of4_u4w8acc32"
    assert SystolicConfig(overflow="wrap", acc_bits=8).top == "ssa_4x4_2of4_s8w8acc8_wrap"
    assert SystolicConfig(overflow="saturate", acc_bits=8).top == "ssa_4x4_2of4_s8w8acc8_sat"
    assert SystolicConfig(name="my_top$1").top == "my_top$1"


def test_derived_properties():
    sparse = load_config("ssa_8x8_2of4")
    assert (sparse.k, sparse.sparse, sparse.index_bits, sparse.multipliers, sparse.weight_entry_bits) == \
        (32, True, 2, 128, 10)
    dense = load_config("dense_8x8_4of4")
    assert (dense.k, dense.sparse, dense.index_bits, dense.multipliers, dense.weight_entry_bits) == \
        (32, False, 0, 256, 8)
    assert SystolicConfig(keep=3, block=16, rows=2).index_bits == 4
    assert SystolicConfig(keep=1, block=2).index_bits == 1


def test_frozen_and_dict_round_trip():
    config = load_config("ssa_4x8_2of4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rows = 2
    assert list(config.to_dict()) == FIELDS
    assert SystolicConfig.from_dict(config.to_dict()) == config


def test_a_config_class_must_define_top():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class NoTop(ConfigBase):
        size: int = param(1, 1, 4)

    with pytest.raises(TypeError, match="abstract .*top"):
        NoTop()


def test_from_dict_unknown_keys():
    with pytest.raises(ValueError, match=r"'rowz'.*'colz'.*valid fields are rows, cols, act_bits"):
        SystolicConfig.from_dict({"rows": 4, "rowz": 4, "colz": 1})


# ---- overrides and files ---------------------------------------------------------------------------------

def test_dict_overrides_rederive_max_k_and_name():
    config = load_config("ssa_8x8_2of4", overrides={"rows": 4, "acc_bits": 24})
    assert (config.rows, config.cols, config.max_reduction, config.acc_bits) == (4, 8, 16, 24)
    assert config.top == "ssa_4x8_2of4_s8w8acc24"


def test_string_overrides():
    config = load_config("dense_4x4", ["rows = 0x2", "act_signed=No", "overflow=wrap", "acc_bits=0b1000",
                                       "max_k=64", "name=core_0", "cols=3", "cols=5"])
    assert (config.rows, config.act_signed, config.overflow, config.acc_bits, config.max_k, config.name,
            config.cols) == (2, False, "wrap", 8, 64, "core_0", 5)
    assert load_config("dense_4x4", ["max_k=32", "max_k=None"]).max_reduction == 4


@pytest.mark.parametrize("text, expected", [
    ("rows=8", ("rows", 8)),
    (" cols = 0x10 ", ("cols", 16)),
    ("acc_bits=1_6", ("acc_bits", 16)),
    ("act_signed=true", ("act_signed", True)),
    ("act_signed=YES", ("act_signed", True)),
    ("act_signed=1", ("act_signed", True)),
    ("act_signed=False", ("act_signed", False)),
    ("act_signed=no", ("act_signed", False)),
    ("act_signed=0", ("act_signed", False)),
    ("max_k=none", ("max_k", None)),
    ("max_k=1024", ("max_k", 1024)),
    ("overflow=saturate", ("overflow", "saturate")),
    ("name=a=b", ("name", "a=b")),
    ("rows=-3", ("rows", -3)),  # parsed; range-checked by SystolicConfig
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text, pattern", [
    ("rows", "not of the form field=value"),
    ("", "not of the form field=value"),
    ("rowz=4", "names no field 'rowz'.*valid fields are rows"),
    ("=4", "names no field ''"),
    ("rows=four", "cannot parse 'four' for SystolicConfig.rows"),
    ("rows=4.0", "cannot parse '4.0' for SystolicConfig.rows"),
    ("rows=", "cannot parse '' for SystolicConfig.rows"),
    ("max_k=null", "cannot parse 'null' for SystolicConfig.max_k"),
    ("act_signed=maybe", "cannot parse 'maybe' for SystolicConfig.act_signed"),
])
def test_parse_override_errors(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_override(text)


def test_override_errors_through_load_config():
    with pytest.raises(ValueError, match="SystolicConfig.rows = 0 is out of range: allowed 1 … 128"):
        load_config("dense_4x4", ["rows=0"])
    with pytest.raises(ValueError, match="unknown SystolicConfig field.*'depth'"):
        load_config("dense_4x4", {"depth": 3})
    with pytest.raises(ValueError, match="SystolicConfig.rows = '4' is a str, not an integer"):
        load_config("dense_4x4", {"rows": "4"})  # dict values are typed, not parsed


def test_unknown_preset_lists_presets():
    with pytest.raises(ValueError) as error:
        load_config("ssa_9x9")
    assert "'ssa_9x9'" in str(error.value)
    assert all(preset in str(error.value) for preset in PRESETS)


def test_toml_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('rows = 2\ncols = 3\nkeep = 1\nblock = 2\nname = "mine"\n')
    for source in (path, str(path)):
        config = load_config(source, ["cols=5"])
        assert (config.rows, config.cols, config.keep, config.block, config.name) == (2, 5, 1, 2, "mine")


@pytest.mark.parametrize("content, pattern", [
    ("rows = \n", "is not valid TOML"),
    ("rows = 2.0\n", r"SystolicConfig.rows = 2.0 is a float, not an integer"),
    ("[systolic]\nrows = 2\n", "unknown SystolicConfig field.*'systolic'"),
    ('overflow = "clip"\n', "SystolicConfig.overflow = 'clip' is not allowed"),
])
def test_bad_toml_file(tmp_path, content, pattern):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    # a bad value in a file is a ValueError whatever its type: the file is wrong, not a caller's argument
    with pytest.raises(ValueError, match=pattern):
        load_config(path)


def test_missing_toml_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read config file .*nothing.toml"):
        load_config(str(tmp_path / "nothing.toml"))


# ---- presets that extend presets (base = "...") ------------------------------------------------------------

BASED = [name for name in list_presets() if "base" in tomllib.loads((PRESETS_DIR / f"{name}.toml").read_text())]


def test_some_presets_extend_others():
    assert {"gemm_4x4_2of4_os", "gemm_8x8_2of4_os", "gemm_8x8_dense", "dense_8x8_4of4"} <= set(BASED)


@pytest.mark.parametrize("preset", BASED)
def test_based_preset_is_its_base_plus_its_own_lines(preset):
    own = tomllib.loads((PRESETS_DIR / f"{preset}.toml").read_text())
    base = own.pop("base")
    assert own, f"{preset} repeats {base} without a change"
    assert load_config(preset) == dataclasses.replace(load_config(base), **own)
    assert preset_kind(preset) == preset_kind(base)


def test_base_chain_by_path_and_name(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mid.toml").write_text('base = "gemm_8x8_2of4"\nrows = 4\nmax_m = 7\n')
    (tmp_path / "top.toml").write_text('base = "sub/mid.toml"\nmax_m = 9\nrelu = true\n')
    config = load_config(tmp_path / "top.toml", ["cols=2"])
    expected = dataclasses.replace(load_config("gemm_8x8_2of4"), rows=4, cols=2, max_m=9, relu=True)
    assert type(config).__name__ == "GemmConfig" and config == expected


@pytest.mark.parametrize("files, pattern", [
    ({"a.toml": 'base = "nope"\n'}, r"config file '.*a.toml': base = 'nope' is not a preset: allowed dense_4x4"),
    ({"a.toml": "base = 3\n"}, r"config file '.*a.toml': base = 3 is a int, not a str"),
    ({"a.toml": 'base = "a.toml"\nrows = 2\n'}, r"config file '.*a.toml': base = 'a.toml' makes a cycle"),
    ({"a.toml": 'base = "b.toml"\n', "b.toml": 'base = "a.toml"\n'},
     r"config file 'b.toml': base = 'a.toml' makes a cycle \(.*a.toml → b.toml → a.toml\)"),
    ({"a.toml": 'base = "gone.toml"\n'}, r"cannot read config file 'gone.toml'"),
])
def test_bad_base(tmp_path, files, pattern):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=pattern):
        load_config(tmp_path / "a.toml")


# ---- field validation ------------------------------------------------------------------------------------

BAD_VALUES = [
    ("rows", 0), ("rows", 129), ("rows", -1), ("rows", True), ("rows", 4.0), ("rows", "4"), ("rows", None),
    ("cols", 0), ("cols", 129), ("cols", 2**100), ("cols", False),
    ("act_bits", 1), ("act_bits", 17), ("act_bits", 8.5),
    ("act_signed", 1), ("act_signed", "true"), ("act_signed", None),
    ("weight_bits", 1), ("weight_bits", 17), ("weight_bits", "8"),
    ("acc_bits", 3), ("acc_bits", 65), ("acc_bits", [32]),
    ("block", 0), ("block", 3), ("block", 32), ("block", True), ("block", 4.0),
    ("keep", 0), ("keep", 5), ("keep", True), ("keep", 2.0),
    ("max_k", 15), ("max_k", 2**20 + 1), ("max_k", 0), ("max_k", True), ("max_k", 16.0), ("max_k", "16"),
    ("overflow", "clip"), ("overflow", "CHECK"), ("overflow", ""), ("overflow", None), ("overflow", 0),
    ("counter_bits", 15), ("counter_bits", 65), ("counter_bits", 32.0),
    ("name", ""), ("name", "1abc"), ("name", "a b"), ("name", "$x"), ("name", "a-b"), ("name", "é"),
    ("name", "a" * 65), ("name", 5), ("name", b"top"),
    *(("name", keyword) for keyword in KEYWORDS),
]


def wrong_type(field, value):
    """Independent of the validator: is ``value`` of a type ``field`` never takes (a TypeError, not a ValueError)?"""
    kind = {"act_signed": bool, "overflow": str, "name": str}.get(field, int)
    if value is None:
        return field not in ("max_k", "name")
    if kind is int:
        return type(value) is not int
    return type(value) is not kind


def shown(value):
    """``value`` as messages show it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@pytest.mark.parametrize("field, value", BAD_VALUES)
def test_bad_field_value(field, value):
    with pytest.raises(TypeError if wrong_type(field, value) else ValueError) as error:
        SystolicConfig(**{field: value})
    message = str(error.value)
    assert message.startswith(f"SystolicConfig.{field} = {shown(value)} ")
    assert "allowed" in message


@pytest.mark.parametrize("field, value", BAD_VALUES)
def test_replace_with_bad_value(field, value):
    with pytest.raises(TypeError if wrong_type(field, value) else ValueError,
                       match=re.escape(f"SystolicConfig.{field} = {shown(value)} ")):
        dataclasses.replace(load_config("ssa_8x8_2of4"), **{"max_k": None, field: value})


def test_numpy_scalars_are_stored_as_python_values():
    """What numpy-driven sweeps need: numpy ints and bools are accepted and stored as int and bool."""
    config = SystolicConfig(rows=np.int64(4), act_signed=np.bool_(False), max_k=np.int32(64))
    assert (type(config.rows), type(config.act_signed), type(config.max_k)) == (int, bool, int)
    plain = SystolicConfig(rows=4, act_signed=False, max_k=64)
    assert config == plain and hash(config) == hash(plain) and config.to_dict() == plain.to_dict()
    for rows in np.arange(1, 4):
        assert type(dataclasses.replace(config, rows=rows).rows) is int
    gemm = GemmConfig(max_m=np.uint16(7), relu=np.bool_(True), out_bits=np.int8(8), acc_bits=24, max_k=16)
    assert (type(gemm.max_m), type(gemm.relu), type(gemm.out_bits)) == (int, bool, int)
    with pytest.raises(TypeError, match=r"SystolicConfig.rows = np.float64\(4.0\) is a float64, not an integer: allowed 1 … 128"):
        SystolicConfig(rows=np.float64(4.0))
    with pytest.raises(ValueError, match=r"SystolicConfig.rows = 129 is out of range: allowed 1 … 128"):
        SystolicConfig(rows=np.int64(129))


def test_range_messages_name_limits():
    with pytest.raises(ValueError, match=re.escape("SystolicConfig.keep = 5 is out of range: allowed 1 … 4 (block)")):
        SystolicConfig(keep=5, block=4)
    with pytest.raises(ValueError, match=re.escape("SystolicConfig.max_k = 8 is out of range: "
                                                   "allowed 16 (rows·block) … 1048576")):
        SystolicConfig(max_k=8)
    with pytest.raises(ValueError, match="SystolicConfig.name = 'module' is a Verilog keyword"):
        SystolicConfig(name="module")


def test_first_bad_field_is_reported():
    with pytest.raises(ValueError, match="SystolicConfig.rows"):
        SystolicConfig(rows=0, cols=0, name="module")
    with pytest.raises(ValueError, match="SystolicConfig.block"):  # block is checked before keep
        SystolicConfig(keep=0, block=3)


def test_replace_rederives_unset_fields():
    config = load_config("ssa_8x8_2of4")
    derived = dataclasses.replace(config, rows=16)
    assert derived == load_config("ssa_16x16_2of4", {"cols": 8})
    assert (derived.top, derived.max_reduction) == ("ssa_16x8_2of4_s8w8acc32", 64)
    with pytest.raises(ValueError, match="SystolicConfig.max_k = 32 is out of range: allowed 64"):
        dataclasses.replace(config, rows=16, max_k=32)


# ---- accumulator rule ------------------------------------------------------------------------------------

def test_accumulator_worked_example():
    # 2:4, 4 rows, 8-bit signed: 4 blocks · 2 products of (-128)·(-128) = 8 · 16384 = 131072 = 2**17,
    # which needs 18 value bits plus a sign bit.
    assert needed_acc_bits(max_k=16, keep=2, block=4, act_bits=8, act_signed=True, weight_bits=8) == 19
    SystolicConfig(rows=4, keep=2, block=4, acc_bits=19)
    with pytest.raises(ValueError) as error:
        SystolicConfig(rows=4, keep=2, block=4, acc_bits=18)
    assert str(error.value) == (
        'SystolicConfig.acc_bits = 18 cannot hold the worst-case sum of 8 products of 8-bit signed activations '
        'and 8-bit weights (needs >= 19 bits for max_k = 16); raise acc_bits, or set overflow = "wrap" or "saturate"')
    for overflow in ("wrap", "saturate"):
        assert SystolicConfig(rows=4, keep=2, block=4, acc_bits=18, overflow=overflow).acc_bits == 18
    with pytest.raises(ValueError, match=r"20 products .*needs >= 20 bits .*raise acc_bits, lower max_k, or set"):
        SystolicConfig(rows=4, keep=2, block=4, acc_bits=19, max_k=40)


@pytest.mark.parametrize("params", [
    dict(rows=4, keep=2, block=4, act_bits=8, act_signed=True, weight_bits=8),
    dict(rows=4, keep=2, block=4, act_bits=8, act_signed=False, weight_bits=8),
    dict(rows=4, keep=2, block=4, act_bits=8, act_signed=True, weight_bits=8, max_k=17),
    dict(rows=4, keep=2, block=4, act_bits=8, act_signed=True, weight_bits=8, max_k=2**20),
    dict(rows=1, keep=1, block=1, act_bits=2, act_signed=True, weight_bits=2),
    dict(rows=1, keep=1, block=1, act_bits=2, act_signed=False, weight_bits=2),
    dict(rows=64, keep=16, block=16, act_bits=16, act_signed=False, weight_bits=16, max_k=2**20),
    dict(rows=3, keep=3, block=8, act_bits=5, act_signed=False, weight_bits=7, max_k=100),
])
def test_accumulator_boundary(params):
    needed = needed_acc_bits(max_k=params.get("max_k", params["rows"] * params["block"]),
                             **{key: value for key, value in params.items() if key not in ("rows", "max_k")})
    if needed > 4:
        with pytest.raises(ValueError, match=f"SystolicConfig.acc_bits = {needed - 1} .*needs >= {needed} bits"):
            SystolicConfig(**params, acc_bits=needed - 1)
        SystolicConfig(**params, acc_bits=needed - 1, overflow="wrap")
    if needed <= 64:
        SystolicConfig(**params, acc_bits=max(needed, 4))


# ---- random configs --------------------------------------------------------------------------------------

def wild():
    # Its text is never an all-lowercase word, so that KEYWORDS are the only reserved names any strategy draws.
    text = st.text(max_size=6).filter(lambda t: not re.fullmatch(r"[a-z0-9_]+", t))
    return st.one_of(st.integers(), st.integers(-2**80, 2**80), st.booleans(), st.none(), st.floats(), text,
                     st.lists(st.integers(), max_size=2), st.binary(max_size=2))


VALID = {
    "rows": st.integers(1, 64), "cols": st.integers(1, 64), "act_bits": st.integers(2, 16),
    "act_signed": st.booleans(), "weight_bits": st.integers(2, 16), "acc_bits": st.integers(4, 64),
    "keep": st.integers(1, 16), "block": st.sampled_from([1, 2, 4, 8, 16]),
    "max_k": st.none() | st.integers(1, 2**20), "overflow": st.sampled_from(["check", "wrap", "saturate"]),
    "counter_bits": st.integers(16, 64), "pe_pipeline": st.integers(0, 4), "name": st.none() | st.from_regex(r"x[0-9]{0,70}", fullmatch=True),
}
NEAR = {  # values at and just outside the limits, and near-misses of the string fields
    "act_signed": st.sampled_from([0, 1, "true", None]),
    "block": st.sampled_from([0, 3, 32, 4.0]),
    "max_k": st.sampled_from([0, 2**20, 2**20 + 1]),
    "overflow": st.sampled_from(["Wrap", "saturated", "", None]),
    "name": st.sampled_from(KEYWORDS + ["", "1x", "a b", "X" * 65]),
}


@st.composite
def config_dicts(draw):
    """Mostly valid field values, then up to three fields replaced by values near or far out of range."""
    d = draw(st.fixed_dictionaries({}, optional=VALID))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        d[field] = draw(NEAR.get(field, st.integers(-2, 70)) | wild())
    return d


@settings(max_examples=1500)
@given(config_dicts())
def test_random_configs(d):
    try:
        config = SystolicConfig(**d)
    except (TypeError, ValueError):
        assert not is_valid(d), d
        return
    assert is_valid(d), d
    assert SystolicConfig.from_dict(config.to_dict()) == config
    assert config.max_reduction == (config.k if d.get("max_k") is None else d["max_k"])
    assert config.top == (config._derived_name() if d.get("name") is None else d["name"])


def test_kind_dispatch(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text('kind = "systolic"\nrows = 2\n')
    assert isinstance(load_config(path), SystolicConfig) and load_config(path).rows == 2
    path.write_text('kind = "nonesuch"\n')
    with pytest.raises(ValueError, match="unknown config kind 'nonesuch'"):
        load_config(path)
    assert all(preset_kind(name) in CONFIG_KINDS for name in list_presets())
    assert set(list_presets("systolic")) <= set(list_presets())
