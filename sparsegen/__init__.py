"""sparsegen as installed: one top-level package holding ``sparsegen.hw``, ``sparsegen.gen`` and ``sparsegen.sim``.

In a checkout (and an editable install) the three are the top-level packages ``hw``, ``gen`` and ``sim``; the wheel
build (``setup.py``) moves them under ``sparsegen`` and rewrites their imports. See docs/architecture.md,
"Packaging".
"""

from gen import __version__

__all__ = ["__version__"]
