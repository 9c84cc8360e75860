"""Formats shared by every layer, in numpy only (importing them never imports Amaranth).

:mod:`hw.formats.nm` N:M compression and accumulator widths; :mod:`hw.formats.conv` convolution as GEMM
(im2col, weight matrices); :mod:`hw.formats.mapping` what a mapped RRAM tile holds (:class:`TileMapping`,
:class:`CrossbarGeometry`); :mod:`hw.formats.mvm` the arithmetic a mapping defines (the integer MVM, lossless ADC
bits); :mod:`hw.formats.faults` the stuck-at fault map drawn from a seed. The RTL, the generators, the compiler,
the golden models and the drivers all import these; none of them defines a second copy.
"""
