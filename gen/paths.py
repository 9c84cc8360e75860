"""Where sparsegen writes: the one build directory for caches, simulator builds and outputs.

Nothing is ever written inside the package, so an installed sparsegen leaves ``site-packages`` untouched.
"""

import os
from pathlib import Path

__all__ = ["BUILD_ENV", "build_dir"]

BUILD_ENV = "SPARSEGEN_BUILD"


def build_dir() -> Path:
    """``$SPARSEGEN_BUILD`` if set, else ``./build`` under the current directory (absolute, read at each call)."""
    return Path(os.environ.get(BUILD_ENV) or "build").absolute()
