"""The seeds table's schema, table and CLI error paths (the papers' own figures are tested beside each module)."""

import subprocess
import sys
import types

import pytest

import sim.seeds as seeds

ROW = {"paper": "sme", "network": "resnet50", "weights": "synthetic", "metric": "crossbar_reduction", "claim": 8.7,
       "ours": 9.1, "accuracy_drop": None, "settings": {"cell_bits": 1}}


def test_check_row_accepts_the_schema():
    assert seeds.check_row(dict(ROW)) == ROW
    trained = dict(ROW, weights="trained", network="digits", accuracy_drop=0.2, accuracy_target=0.3)
    assert seeds.met(trained) is True
    assert seeds.met(dict(trained, accuracy_drop=0.5)) is False
    assert seeds.met(dict(ROW, ours=2.0)) is False
    assert seeds.met(dict(ROW, claim=None)) is None


@pytest.mark.parametrize("change, word", [
    ({"paper": "nope"}, "paper"), ({"weights": "real"}, "weights"), ({"ours": float("nan")}, "ours"),
    ({"ours": None}, "ours"), ({"claim": "8.7"}, "claim"), ({"accuracy_drop": 0.1}, "accuracy_drop"),
    ({"settings": []}, "settings"), ({"extra": 1}, "unknown"), ({"ours": True}, "ours")])
def test_check_row_rejects_bad_rows(change, word):
    with pytest.raises((TypeError, ValueError), match=word):
        seeds.check_row(dict(ROW, **change))


def test_trained_rows_need_an_accuracy_drop():
    with pytest.raises(ValueError, match="accuracy_drop"):
        seeds.check_row(dict(ROW, weights="trained", accuracy_drop=None))


def test_seed_rows_validates_what_a_module_returns(monkeypatch):
    good = types.SimpleNamespace(rows=lambda quick=False, progress=None: [dict(ROW)])
    bad = types.SimpleNamespace(rows=lambda quick=False, progress=None: [dict(ROW, paper="auto-prune")])
    monkeypatch.setattr(seeds.importlib, "import_module", lambda name: good if name == seeds.PAPERS["sme"] else bad)
    assert seeds.seed_rows("sme") == [ROW]
    text = seeds.table([ROW])
    assert "resnet50" in text and "8.70×" in text and "9.10×" in text and "yes" in text
    with pytest.raises(ValueError, match="auto-prune"):
        seeds.seed_rows(["pattern-kernel-reorder"])
    with pytest.raises(ValueError, match="paper"):
        seeds.seed_rows(["nope"])


def test_cli_rejects_an_unknown_paper():
    r = subprocess.run([sys.executable, "-m", "gen", "seeds", "--only", "nope", "--json"], capture_output=True,
                       text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("sparsegen: error: --only") and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_the_accuracy_drop_is_against_the_shipped_int8_network():
    from gen.network.spec import load
    from sim.network.pipeline import SHIPPED_ACCURACY

    assert seeds.int8_accuracy(load("digits-int8")) == SHIPPED_ACCURACY["int8"] == 435 / 450
    assert seeds.accuracy_drop(435 / 450) == 0
    assert seeds.accuracy_drop(434 / 450) == pytest.approx(100 / 450)


def test_make_row_builds_a_checked_row():
    row = seeds.make_row("sme", "resnet50", "synthetic", "crossbar_reduction", claim=8.7, ours=9.1,
                         settings={"cell_bits": 1})
    assert row == ROW
    trained = seeds.make_row("sme", "digits", "trained", "crossbar_reduction", claim=None, ours=1.5, settings={},
                             accuracy_drop=0.2, accuracy_target=0.3, note="n")
    assert trained["accuracy_target"] == 0.3 and trained["note"] == "n"
    with pytest.raises(ValueError, match="accuracy_drop"):
        seeds.make_row("sme", "digits", "trained", "crossbar_reduction", claim=None, ours=1.5, settings={})
