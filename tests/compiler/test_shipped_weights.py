"""``--weights`` takes a shipped name (``bars``) or a path; anything else is a one-line error naming the choices."""

import pytest

from gen.cli import main
from gen.compiler.report import map_report
from gen.compiler.workloads import DATA_DIR, shipped_weights, weights_path


def test_shipped_names():
    assert shipped_weights() == {"bars": DATA_DIR / "bars.npz"}
    assert weights_path("bars") == DATA_DIR / "bars.npz"
    assert weights_path(DATA_DIR / "bars.npz") == DATA_DIR / "bars.npz"


def test_name_and_path_give_the_same_report():
    by_name = map_report(weights="bars")
    by_path = map_report(weights=str(DATA_DIR / "bars.npz"))
    assert by_name["layers"] == by_path["layers"] and len(by_name["layers"]) == 3


@pytest.mark.parametrize("value", ["resnet", "missing.npz", "no/such/dir/w.npz"])
def test_unknown_is_a_clean_error(value, capsys):
    assert main(["map-report", "--weights", value, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"sparsegen: error: --weights {value}: no such file and no shipped weights of that name: "
                   "allowed a .npz file or one of bars")
