"""sparsegen generators: validated configs → Verilog and manifests.

``from gen import SystolicConfig, load_config, generate_verilog, write_verilog``. The Verilog functions import
Amaranth on first use, so loading configs stays cheap.
"""

from importlib import metadata

from gen.config import list_presets, load_config
from gen.systolic.config import SystolicConfig

__all__ = ["__version__", "SystolicConfig", "load_config", "list_presets", "generate_verilog", "write_verilog"]

try:
    __version__ = metadata.version("sparsegen")
except metadata.PackageNotFoundError:   # running from a source tree that was never installed
    __version__ = "0.0.0+source"


def generate_verilog(config):
    """See :func:`gen.verilog.generate_verilog` (``config``: a config, a preset name or a ``.toml`` path)."""
    from gen.verilog import generate_verilog as _generate
    return _generate(config)


def write_verilog(config, out_dir):
    """See :func:`gen.verilog.write_verilog`."""
    from gen.verilog import write_verilog as _write
    return _write(config, out_dir)
