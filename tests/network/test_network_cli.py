"""``python -m gen accuracy`` (the plugin sim/network/cli.py): JSON shape, bad options (no RTL, no training)."""

import json

import pytest

from gen.cli import main
from sim.network.pipeline import SHIPPED_ACCURACY


def test_accuracy_json_without_rtl(tmp_path, capsys):
    assert main(["accuracy", "--no-rtl", "--no-pruning", "--no-analog", "--json", "--out", str(tmp_path)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["dataset"].startswith("sklearn digits")
    assert res["accuracy"] == {"float": SHIPPED_ACCURACY["float"], "int8": SHIPPED_ACCURACY["int8"]}
    assert res["rtl_images"] == 0 and res["bit_exact"] is True


@pytest.mark.parametrize("argv, message", [
    (["--images", "1000"], "--images = 1000 is out of range: allowed 0 … 450"),
    (["--chips", "0"], "--chips = 0 is out of range: allowed 1 … 1000"),
    (["--analog-images", "0"], "--analog-images = 0 is out of range: allowed 1 … 450"),
])
def test_bad_options(argv, message, capsys):
    assert main(["accuracy", *argv]) == 2
    err = capsys.readouterr().err
    assert f"sparsegen: error: {message}" in err and err.count("\n") == 1
