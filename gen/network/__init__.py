"""Networks on real data: the one layer-spec description (:mod:`gen.network.spec`), the digits data set
(:mod:`gen.network.data`), float training and masked fine-tuning (:mod:`gen.network.train`) and ONNX export
(:mod:`gen.network.onnx_export`). The int8 golden, the RTL runs and the accuracy study are in ``sim/network``
(docs/network.md)."""
