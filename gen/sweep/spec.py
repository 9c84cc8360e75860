"""The sweep spec (a TOML file or a dict) and the points it expands to.

A spec names a base preset (or ``.toml`` config), axes over any fields of that config's class, the workloads and
the stages to run per point::

    base = "gemm_4x4_2of4"
    set = {cols = 2, max_k = 32}               # fields every point overrides (as --set does)
    stages = ["perf", "map", "synth"]          # "validate" always runs
    pareto = ["area", "cycles"]                # objectives (see gen.sweep.results.METRICS)

    [axes]
    rows = [2, 4]                              # a list of values,
    keep = {start = 1, stop = 2}               # or an inclusive range (step 1 unless given)
    dataflow = ["ws", "os"]

    [[workloads]]
    gemm = [16, 32, 8]                         # M, K, N (or "16,32,8"); name = "..." optional
    [[workloads]]
    net = "tiny"                               # a built-in network of gen.compiler.networks

    [synth]                                    # per-stage options; `where` picks the points a stage runs on
    pnr = false
    where = {rows = 2}

Axis values go through the same machinery as ``--set``: a value written as a string for a field that is not a
string is parsed as ``--set`` parses it (:func:`gen.config.parse_override`), every value is checked against the
field's own declaration (type, and its range or choices where those do not depend on other fields) before any
work, and each point is the config :func:`gen.config.load_config` returns for the base with the point's values
as overrides. A combination the config rejects is a point with status ``invalid`` and the config's message, not
an error of the spec.
"""

import dataclasses
import hashlib
import itertools
import json
import os
import re
import tomllib
from pathlib import Path

from hw import checks

from gen.config import config_class, load_config, parse_override

__all__ = ["STAGES", "STAGE_OPTIONS", "WORKLOAD_KINDS", "Workload", "Point", "SweepSpec", "load_spec",
           "register_workload", "expand", "selected"]

STAGES = ("validate", "perf", "synth", "map", "rtl")
"""Stages in the order they run for a point; ``validate`` runs for every point."""

# Options of each stage with their defaults and checks; every stage also takes `where` and `timeout`.
STAGE_OPTIONS = {
    "validate": {},
    "perf": {},
    "synth": {"target": "ecp5", "pnr": True, "freq_mhz": 100.0, "dsp": "auto", "seed": 1},
    "map": {"prune": "none", "quant": "int8", "mapping": "dense", "xbar": [128, 128], "ou": [9, 8],
            "cell_bits": 2, "seed": 0},
    "rtl": {"sim": "verilator", "seed": 1, "testcase": None},
}
_COMMON = {"where": {}, "timeout": None}
_TOP_KEYS = ("name", "base", "set", "axes", "workloads", "stages", "pareto", *STAGES)


def _gemm(value, where):
    if isinstance(value, str):
        parts = value.replace("x", ",").split(",")
    elif isinstance(value, list):
        parts = value
    else:
        checks.fail(where, value, f"is a {type(value).__name__}", "M,K,N: a list of three integers or a string",
                    exc=TypeError)
    try:
        dims = [int(p) for p in parts]
    except (TypeError, ValueError):
        dims = []
    if len(dims) != 3 or any(isinstance(p, bool) or (not isinstance(p, str) and not isinstance(p, int))
                             for p in parts) or min(dims) < 1:
        checks.fail(where, value, "is not M,K,N", "three positive integers, e.g. [64, 64, 64] or \"64,64,64\"")
    return tuple(dims)


def _net(value, where):
    from gen.compiler.networks import NETWORKS

    return checks.check_choice(where, value, tuple(NETWORKS))


def _npz(value, where):
    from gen.compiler.workloads import shipped_weights

    checks.check_str(where, value, "a shipped weights name or the path of a .npz file")
    if value in shipped_weights():
        return value
    return str(checks.check_readable_file(where, value))


WORKLOAD_KINDS = {"gemm": _gemm, "net": _net, "npz": _npz}
"""Workload kind → ``parse(value, where)``, which checks a spec's value and returns it in the form the stages take.

The hook for new kinds (an ONNX model once ``gen`` can import one): :func:`register_workload`, plus the stages
that should use it (``gen.sweep.stages``)."""


def register_workload(kind: str, parse) -> None:
    """Make ``{kind = value}`` a workload of the spec; ``parse(value, where)`` checks and converts the value."""
    checks.check_str("kind", kind, "a workload kind name")
    if not callable(parse):
        checks.fail("parse", parse, "is not callable", "a function parse(value, where)", exc=TypeError)
    WORKLOAD_KINDS[kind] = parse


@dataclasses.dataclass(frozen=True)
class Workload:
    """One workload: its ``kind`` (a key of :data:`WORKLOAD_KINDS`), ``name`` and parsed ``value``."""

    kind: str
    name: str
    value: object

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name,
                "value": list(self.value) if isinstance(self.value, tuple) else self.value}


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: its index, id, axis values, and the config (``None`` with ``error`` when invalid)."""

    index: int
    id: str
    values: dict
    config: object = None
    error: str | None = None

    @property
    def label(self) -> str:
        return ",".join(f"{name}={value}" for name, value in self.values.items())


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see the module docstring); build it with :func:`load_spec`."""

    name: str
    base: str
    kind: str
    fixed: dict
    axes: dict
    workloads: tuple
    stages: tuple
    options: dict
    pareto: tuple

    def to_dict(self) -> dict:
        return {"name": self.name, "base": self.base, "kind": self.kind, "set": dict(self.fixed),
                "axes": {name: list(values) for name, values in self.axes.items()},
                "workloads": [w.to_dict() for w in self.workloads], "stages": list(self.stages),
                "options": self.options, "pareto": list(self.pareto)}

    def workloads_of(self, kind: str) -> list:
        return [w for w in self.workloads if w.kind == kind]


def _axis_values(cls, name, raw):
    where = f"axes.{name}"
    if isinstance(raw, dict):
        unknown = set(raw) - {"start", "stop", "step"}
        if unknown or not {"start", "stop"} <= set(raw):
            checks.fail(where, raw, "is not a range", "{start = A, stop = B} or {start, stop, step} (inclusive)")
        start = checks.check_int(f"{where}.start", raw["start"])
        stop = checks.check_int(f"{where}.stop", raw["stop"])
        step = checks.check_int(f"{where}.step", raw.get("step", 1), 1)
        if stop < start:
            checks.fail(f"{where}.stop", stop, "is below start", f"{start} or more")
        raw = list(range(start, stop + 1, step))
    if not isinstance(raw, list) or not raw:
        checks.fail(where, raw, "is not a non-empty list or a range", "[v1, v2, …] or {start = A, stop = B}")
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    allowed = field.metadata["allowed"]
    # bounds that name other fields depend on the point: those are judged per point (an invalid point)
    alone = dataclasses.replace(allowed, lo=None if isinstance(allowed.lo, str) else allowed.lo,
                                hi=None if isinstance(allowed.hi, str) else allowed.hi)
    values = []
    for value in raw:
        try:
            if isinstance(value, str) and field.type not in (str, str | None):
                value = parse_override(f"{name}={value}", cls)[1]          # --set semantics
            value = alone.check(f"{cls.__name__}.{name}", value, field.type, None)
        except TypeError as error:
            raise ValueError(f"{where}: {error}") from None
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        values.append(value)
    if len(set(map(repr, values))) != len(values):
        checks.fail(where, raw, "repeats a value", "distinct values")
    return tuple(values)


def _stage_options(stage, raw):
    if not isinstance(raw, dict):
        checks.fail(stage, raw, f"is a {type(raw).__name__}", "a table of options", exc=TypeError)
    known = STAGE_OPTIONS[stage] | _COMMON
    unknown = [key for key in raw if key not in known]
    if unknown:
        raise ValueError(f"[{stage}] has unknown option(s) {', '.join(map(repr, unknown))}: allowed "
                         f"{', '.join(known)}")
    options = {key: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
               for key, v in known.items()} | raw
    if options["timeout"] is not None:
        options["timeout"] = checks.check_float(f"{stage}.timeout", options["timeout"], 1e-3,
                                                allowed="a number of seconds > 0")
    if stage == "synth":
        from gen.synth.flow import TARGETS

        checks.check_choice("synth.target", options["target"], TARGETS)
        checks.check_bool("synth.pnr", options["pnr"])
        options["freq_mhz"] = checks.check_float("synth.freq_mhz", options["freq_mhz"], 1, 1000)
        checks.check_choice("synth.dsp", options["dsp"], ("auto", "on", "off"))
        checks.check_int("synth.seed", options["seed"], 0)
    elif stage == "map":
        for key in ("xbar", "ou"):
            pair = options[key]
            if not isinstance(pair, list) or len(pair) != 2:
                checks.fail(f"map.{key}", pair, "is not a [rows, cols] pair", "two integers, e.g. [128, 128]",
                            exc=TypeError)
            for i, n in enumerate(pair):
                checks.check_int(f"map.{key}[{i}]", n, 1)
        for key in ("prune", "quant", "mapping"):
            checks.check_str(f"map.{key}", options[key])
        from gen.compiler.prune import parse_prune
        from gen.compiler.sparse_map import parse_strategy
        from gen.compiler.workloads import QUANTIZERS

        parse_prune(options["prune"])
        parse_strategy(options["mapping"])
        checks.check_choice("map.quant", options["quant"], tuple(QUANTIZERS))
        checks.check_int("map.seed", options["seed"], 0)
    elif stage == "rtl":
        checks.check_choice("rtl.sim", options["sim"], ("verilator", "icarus"))
        checks.check_int("rtl.seed", options["seed"], 0, 2**31 - 1)
        if options["testcase"] is not None:
            checks.check_str("rtl.testcase", options["testcase"], "the name of one cocotb test")
    return options


def load_spec(spec, *, pareto=None) -> SweepSpec:
    """Read and validate a sweep spec: every key, axis value, workload and stage option, before any work.

    Parameters
    ----------
    spec : str, path-like or dict
        The path of a TOML file, or its table as a dict.
    pareto : list of str, optional
        Objectives that replace the spec's ``pareto`` (the command line's ``--pareto``).

    Raises
    ------
    ValueError
        Naming the key and what is allowed, for any bad entry (also for values of the wrong type: they come from
        a file).
    """
    from gen.sweep.results import parse_objectives

    if isinstance(spec, (str, os.PathLike)):
        path = checks.check_readable_file("--spec", spec)
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"--spec {os.fspath(spec)}: not valid TOML: {error}") from None
        default_name = path.stem
        base_dir = path.parent
    elif isinstance(spec, dict):
        data, default_name, base_dir = dict(spec), "sweep", Path.cwd()
    else:
        checks.fail("spec", spec, f"is a {type(spec).__name__}", "the path of a TOML file or a dict", exc=TypeError)
    try:
        return _build(data, default_name, base_dir, pareto, parse_objectives)
    except TypeError as error:
        raise ValueError(str(error)) from None


def _build(data, default_name, base_dir, pareto, parse_objectives):
    unknown = [key for key in data if key not in _TOP_KEYS]
    if unknown:
        raise ValueError(f"sweep spec has unknown key(s) {', '.join(map(repr, unknown))}: allowed "
                         f"{', '.join(_TOP_KEYS)}")
    if "base" not in data:
        raise ValueError("sweep spec has no base: allowed a preset name or the path of a .toml config")
    base = checks.check_str("base", data["base"], "a preset name or the path of a .toml config")
    if base.endswith(".toml") and not Path(base).is_absolute():
        base = str((base_dir / base).resolve()) if (base_dir / base).exists() else base
    config = load_config(base)
    cls = config_class(config.kind)
    name = checks.check_str("name", data.get("name", default_name), "a name for the sweep")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", name):
        # it names the output directory and the table's files
        checks.fail("name", name, "is not a file name", "letters, digits, _, . and -, at most 64 characters")
    axes_raw = data.get("axes", {})
    if not isinstance(axes_raw, dict):
        checks.fail("axes", axes_raw, f"is a {type(axes_raw).__name__}", "a table of field = [values]")
    fields = cls.field_names()
    axes = {}
    for axis, raw in axes_raw.items():
        if axis not in fields:
            raise ValueError(f"axes.{axis} is not a field of {cls.__name__} (the base {base!r} is a "
                             f"{config.kind!r} config): allowed {', '.join(fields)}")
        axes[axis] = _axis_values(cls, axis, raw)
    fixed_raw = data.get("set", {})
    if not isinstance(fixed_raw, dict):
        checks.fail("set", fixed_raw, f"is a {type(fixed_raw).__name__}", "a table of field = value")
    fixed = {}
    for field, value in fixed_raw.items():
        if field not in fields:
            raise ValueError(f"set.{field} is not a field of {cls.__name__}: allowed {', '.join(fields)}")
        if field in axes:
            raise ValueError(f"set.{field} is also an axis: allowed in one of set and axes")
        fixed[field] = _axis_values(cls, field, [value])[0]
    workloads = []
    raw_workloads = data.get("workloads", [])
    if not isinstance(raw_workloads, list):
        checks.fail("workloads", raw_workloads, "is not a list", "[[workloads]] tables")
    for i, entry in enumerate(raw_workloads):
        where = f"workloads[{i}]"
        if not isinstance(entry, dict):
            checks.fail(where, entry, "is not a table", "{gemm = [M, K, N]}, {net = NAME} or {npz = PATH}")
        kinds = [key for key in entry if key != "name"]
        if len(kinds) != 1 or kinds[0] not in WORKLOAD_KINDS:
            checks.fail(where, entry, "names no single workload kind",
                        f"one of {', '.join(WORKLOAD_KINDS)} (and an optional name)")
        kind = kinds[0]
        value = WORKLOAD_KINDS[kind](entry[kind], f"{where}.{kind}")
        label = entry.get("name") or (f"{kind}{i}" if kind == "gemm" else Path(str(value)).stem)
        workloads.append(Workload(kind, checks.check_str(f"{where}.name", label), value))
    if len({w.name for w in workloads}) != len(workloads):
        raise ValueError(f"workloads: names {[w.name for w in workloads]} repeat: allowed distinct names "
                         "(give each a name = \"...\")")
    stages = data.get("stages", ["validate", "perf"])
    if not isinstance(stages, list):
        checks.fail("stages", stages, "is not a list", f"a list of {', '.join(STAGES)}")
    for stage in stages:
        checks.check_choice("stages", stage, STAGES)
    stages = tuple(s for s in STAGES if s == "validate" or s in stages)
    for stage in STAGES:
        if stage in data and stage not in stages:
            raise ValueError(f"[{stage}] options given, but {stage!r} is not in stages = {list(stages)}")
    options = {stage: _stage_options(stage, data.get(stage, {})) for stage in stages}
    for stage, opts in options.items():
        where = opts["where"]
        if not isinstance(where, dict):
            checks.fail(f"{stage}.where", where, "is not a table", "{axis = value or [values]}", exc=TypeError)
        for axis, value in where.items():
            if axis not in axes:
                raise ValueError(f"{stage}.where names {axis!r}, which is not an axis: allowed "
                                 f"{', '.join(axes) or '(no axes)'}")
            wanted = value if isinstance(value, list) else [value]
            opts["where"][axis] = [_axis_values(cls, axis, [v])[0] for v in wanted]
    if "perf" in stages and not any(w.kind == "gemm" for w in workloads):
        raise ValueError("stage 'perf' needs a workload: allowed at least one {gemm = [M, K, N]} in [[workloads]]")
    if "map" in stages and not any(w.kind in ("net", "npz") for w in workloads):
        raise ValueError("stage 'map' needs a network: allowed at least one {net = NAME} or {npz = PATH} in "
                         "[[workloads]]")
    objectives = parse_objectives(pareto if pareto is not None else data.get("pareto", []))
    from gen.sweep.results import METRIC_STAGES

    for metric, _ in objectives:
        if METRIC_STAGES.get(metric, "validate") not in stages:
            raise ValueError(f"pareto: {metric!r} comes from stage {METRIC_STAGES[metric]!r}, which is not in "
                             f"stages = {list(stages)}: allowed a metric of the stages that run")
    return SweepSpec(name=name, base=base, kind=config.kind, fixed=fixed, axes=axes, workloads=tuple(workloads), stages=stages,
                     options=options, pareto=objectives)


def _point_id(kind, base, fixed, values):
    text = json.dumps({"kind": kind, "base": base, "set": fixed, "values": values}, sort_keys=True, default=str)
    return "p" + hashlib.sha256(text.encode()).hexdigest()[:10]


def expand(spec: SweepSpec) -> list[Point]:
    """The points of ``spec``: the product of its axes in their order (the last axis varies fastest), each the
    base with ``set`` and the point's values as :func:`gen.config.load_config` overrides; an invalid one carries
    the config's message."""
    checks.check_instance("spec", spec, SweepSpec)
    names = list(spec.axes)
    points = []
    for index, combo in enumerate(itertools.product(*(spec.axes[n] for n in names))):
        values = dict(zip(names, combo))
        try:
            config, error = load_config(spec.base, spec.fixed | values), None
        except (ValueError, TypeError) as exc:
            config, error = None, " ".join(str(exc).split())
        points.append(Point(index, _point_id(spec.kind, spec.base, spec.fixed, values), values, config, error))
    return points


def selected(point: Point, where: dict) -> bool:
    """Whether ``point`` is among the points a stage's ``where`` picks."""
    return all(point.values[axis] in wanted for axis, wanted in where.items())
