"""One inference pipeline, five paths: :func:`evaluate` runs a network on images and scores it.

=============  ===========================================================================================
path           what runs
=============  ===========================================================================================
``float``      the float network in numpy (:func:`gen.network.train.forward`)
``int8``       the int8 golden: exact integer sums and the GEMM engine's output stage
               (:func:`sim.network.golden.int8_forward`)
``gemm_rtl``   every layer as im2col GEMM jobs on the GEMM engine's Verilog (:func:`sim.network.rtl.run_rtl`)
``rram_rtl``   every layer compiled, programmed and run on the RRAM tile's Verilog (:func:`~sim.network.rtl.run_rtl`)
``analog``     the float analog physics model with non-idealities (:func:`sim.network.analog.analog_forward`)
=============  ===========================================================================================

The RTL paths check every layer against the int8 golden inside the simulation (``bit_exact``).
"""

import time

import numpy as np

from hw import checks
from gen.network.spec import Network
from gen.network.train import predict as float_predict
from sim.network.analog import analog_predict
from sim.network.golden import int8_predict

__all__ = ["PATHS", "SHIPPED_ACCURACY", "evaluate"]

PATHS = ("float", "int8", "gemm_rtl", "rram_rtl", "analog")
# Test-split accuracy of the shipped networks (gen/network/data, python -m sim.network.train): correct / 450.
SHIPPED_ACCURACY = {"float": 435 / 450, "int8": 435 / 450}


def evaluate(network: Network, images, labels, path: str = "int8", **options) -> dict:
    """Run ``images`` through ``network`` on ``path`` (see the module) and score the predictions.

    Parameters
    ----------
    network : Network
        A float network for ``path="float"``, an int8 one for the others.
    images : ndarray, shape (n, C, H, W)
        Float images in image units (the digits: 0 … 16).
    labels : array_like of int, shape (n,)
    path : str
        One of :data:`PATHS`.
    **options
        ``gemm_rtl`` / ``rram_rtl``: :func:`sim.network.rtl.run_rtl`'s (``sim``, ``strategy``, ``seed``,
        ``progress``); ``analog``: ``params`` (a :class:`gen.rram.analog.PhysicsParams`, default ideal) and
        :func:`sim.network.analog.analog_forward`'s options.

    Returns
    -------
    dict
        ``accuracy`` (float), ``correct``, ``images``, ``predictions`` (ndarray), ``seconds``; the RTL paths add
        ``bit_exact`` and ``cycles`` (per layer and total).

    Raises
    ------
    ValueError
        An unknown path, a float network on an integer path (or the reverse), images of the wrong shape,
        labels that do not match the images.
    """
    checks.check_instance("network", network, Network)
    checks.check_choice("path", path, PATHS)
    labels = checks.check_int_array("labels", labels, ndim=1, lo=0, hi=network.classes - 1)
    if len(labels) != len(images):
        raise ValueError(f"labels has {len(labels)} entries for {len(images)} images: allowed one per image")
    if (path == "float") == network.quantized:
        raise ValueError(f"path {path!r} needs a {'float' if path == 'float' else 'int8'} network; "
                         f"{network.name!r} is {'int8' if network.quantized else 'float'}")
    start = time.monotonic()
    extra = {}
    if path == "float":
        pred = float_predict(network, images)
    elif path == "int8":
        pred = int8_predict(network, images)
    elif path == "analog":
        from gen.rram.analog import PhysicsParams
        params = options.pop("params", None) or PhysicsParams.ideal()
        pred = analog_predict(network, images, params, **options)
    else:
        from sim.network.rtl import run_rtl
        r = run_rtl(network, images, engine=path.split("_")[0], **options)
        pred = r.predictions
        extra = {"bit_exact": r.bit_exact and bool(np.array_equal(pred, int8_predict(network, images))),
                 "cycles": r.cycles}
    correct = int(np.sum(pred == labels))
    return {"accuracy": correct / max(1, len(labels)), "correct": correct, "images": len(labels),
            "predictions": pred, "seconds": time.monotonic() - start, **extra}
