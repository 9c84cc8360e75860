"""The seed papers' headline results, reproduced on sparsegen's mechanisms: one table (issue 14).

Each paper has a module of this package (:data:`PAPERS`) with ``rows(*, quick=False, progress=None) -> list[dict]``;
every row follows :data:`ROW_KEYS`:

``paper``
    one of :data:`PAPERS`.
``network``
    the network (``vgg16``, ``resnet18``, ``resnet50``, ``mobilenet_v2``, ``digits``, …).
``weights``
    ``"synthetic"`` (:func:`gen.compiler.workloads.synthetic_weights` of the big networks) or ``"trained"`` (the
    shipped digits CNN, :data:`gen.network.spec.SHIPPED`).
``metric``
    the name of a higher-is-better ratio: ``crossbar_area_efficiency``, ``energy_efficiency``,
    ``crossbar_reduction``, ``compression``, ``cycles_saved`` (dense cycles / our cycles), …
``claim``
    the paper's figure for that metric (the low end of a range), or ``None`` where the paper states none.
``ours``
    our figure, measured by the module.
``accuracy_drop``
    test-accuracy points lost on the trained network (int8 golden, 450 test images; ``None`` on synthetic weights).
``settings``
    a dict of what produced the figure (OU, crossbar, cell bits, sparsity, pruning ratios, …).

Optional keys: ``accuracy_target`` (the largest drop the issue allows, points), ``note`` (one line: why a target
is missed, or what the figure means).

``quick=True`` keeps every row but may use fewer fine-tuning epochs and layers (the tests use it); ``progress`` is
``None`` or a callable ``progress(text)`` called before each long step.
"""

import importlib
import math

import numpy as np

from hw import checks

__all__ = ["PAPERS", "ROW_KEYS", "check_row", "seed_rows", "met", "table", "int8_accuracy", "accuracy_drop", "make_row"]

PAPERS = {
    "pattern-kernel-reorder": "sim.seeds.pattern",
    "auto-prune": "sim.seeds.auto_prune",
    "sme": "sim.seeds.sme",
    "pe-wise-ternary": "sim.seeds.pe_ternary",
}
ROW_KEYS = ("paper", "network", "weights", "metric", "claim", "ours", "accuracy_drop", "settings")
_OPTIONAL = ("accuracy_target", "note")


def int8_accuracy(qnet, images=None, labels=None) -> float:
    """Test accuracy (a fraction) of an int8 network through the int8 golden (:func:`sim.network.golden.int8_predict`,
    classes as :func:`~sim.network.golden.classes_of`), on ``images``/``labels`` or the 450 digits test images."""
    from gen.network.data import digits
    from sim.network.golden import int8_predict

    if images is None:
        images, labels = digits("test")
    return float(np.mean(int8_predict(qnet, images) == np.asarray(labels)))


def accuracy_drop(accuracy) -> float:
    """Percentage points below the shipped ``digits-int8``'s test accuracy
    (:data:`sim.network.pipeline.SHIPPED_ACCURACY`, 435/450): the drop every trained row reports."""
    from sim.network.pipeline import SHIPPED_ACCURACY

    return 100.0 * (SHIPPED_ACCURACY["int8"] - float(accuracy))


def _number(row, key, allow_none):
    value = row[key]
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"seed row {row.get('paper')}/{row.get('network')}/{row.get('metric')}: {key} = {value!r} "
                         f"is not a finite number: allowed a number{' or None' if allow_none else ''}")


def check_row(row) -> dict:
    """Validate one row against :data:`ROW_KEYS` (``ValueError`` naming the key); returns it."""
    checks.check_instance("seed row", row, dict)
    missing = [k for k in ROW_KEYS if k not in row]
    extra = [k for k in row if k not in ROW_KEYS + _OPTIONAL]
    if missing or extra:
        raise ValueError(f"seed row {row.get('paper')}: keys missing {missing}, unknown {extra}: allowed "
                         f"{', '.join(ROW_KEYS + _OPTIONAL)}")
    checks.check_choice("seed row paper", row["paper"], tuple(PAPERS))
    checks.check_choice("seed row weights", row["weights"], ("synthetic", "trained"))
    checks.check_str("seed row network", row["network"])
    checks.check_str("seed row metric", row["metric"])
    _number(row, "claim", True)
    _number(row, "ours", False)
    _number(row, "accuracy_drop", row["weights"] == "synthetic")
    if row["weights"] == "synthetic" and row["accuracy_drop"] is not None:
        raise ValueError(f"seed row {row['paper']}/{row['network']}: accuracy_drop = {row['accuracy_drop']!r} on "
                         "synthetic weights: allowed None (accuracy is measured on the trained network only)")
    checks.check_instance("seed row settings", row["settings"], dict)
    if "accuracy_target" in row:
        _number(row, "accuracy_target", True)
    return row


def make_row(paper, network, weights, metric, *, claim, ours, settings, accuracy_drop=None, accuracy_target=None,
             note=None) -> dict:
    """One row of :data:`ROW_KEYS` (``accuracy_target`` and ``note`` only when given), validated by
    :func:`check_row`."""
    row = {"paper": paper, "network": network, "weights": weights, "metric": metric, "claim": claim,
           "ours": float(ours), "accuracy_drop": accuracy_drop, "settings": settings}
    if accuracy_target is not None:
        row["accuracy_target"] = accuracy_target
    if note:
        row["note"] = note
    return check_row(row)


def met(row) -> bool | None:
    """Whether the row meets its claim (``ours >= claim``) and its accuracy target (``drop <= target``); ``None``
    where neither is stated."""
    parts = []
    if row["claim"] is not None:
        parts.append(row["ours"] >= row["claim"])
    if row.get("accuracy_target") is not None and row["accuracy_drop"] is not None:
        parts.append(row["accuracy_drop"] <= row["accuracy_target"])
    return all(parts) if parts else None


def seed_rows(papers=None, *, quick: bool = False, progress=None) -> list[dict]:
    """Rows of the papers named (default all of :data:`PAPERS`, in its order), each validated by :func:`check_row`."""
    if papers is None:
        papers = list(PAPERS)
    if isinstance(papers, str):
        papers = [papers]
    rows = []
    for paper in papers:
        checks.check_choice("paper", paper, tuple(PAPERS))
        for row in importlib.import_module(PAPERS[paper]).rows(quick=quick, progress=progress):
            if check_row(row)["paper"] != paper:
                raise ValueError(f"module {PAPERS[paper]} returned a row of paper {row['paper']!r}: allowed {paper!r}")
            rows.append(row)
    return rows


def _fmt(x, unit=""):
    if x is None:
        return "–"
    return f"{x:.2f}{unit}"


def table(rows) -> str:
    """The rows as a plain-text table: paper, network, weights, metric, claim, ours, accuracy drop, met."""
    head = ("paper", "network", "weights", "metric", "claim", "ours", "acc. drop (pt)", "met")
    body = [(r["paper"], r["network"], r["weights"], r["metric"], _fmt(r["claim"], "×"), _fmt(r["ours"], "×"),
             _fmt(r["accuracy_drop"]) + (f" (≤ {r['accuracy_target']:g})" if r.get("accuracy_target") is not None
                                         and r["accuracy_drop"] is not None else ""),
             {True: "yes", False: "NO", None: "–"}[met(r)]) for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"- {r['paper']} / {r['network']} / {r['metric']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))
