"""sparsegen generators: validated configs → Verilog and manifests.

``from gen import SystolicConfig, load_config, generate_verilog, write_verilog``. The Verilog functions import
Amaranth on first use, so loading configs stays cheap.
"""

from .config import SystolicConfig, list_presets, load_config

__all__ = ["SystolicConfig", "load_config", "list_presets", "generate_verilog", "write_verilog"]


def generate_verilog(config):
    """See :func:`gen.verilog.generate_verilog` (``config``: a config, a preset name or a ``.toml`` path)."""
    from .verilog import generate_verilog as _generate
    return _generate(config)


def write_verilog(config, out_dir):
    """See :func:`gen.verilog.write_verilog`."""
    from .verilog import write_verilog as _write
    return _write(config, out_dir)
