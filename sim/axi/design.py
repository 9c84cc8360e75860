"""A wrapped design as a :func:`sim.common.runner.run_design` design: its config, its ``<top>_axi`` Verilog."""

import hashlib
import json
from dataclasses import dataclass

from gen.axi.verilog import generate_wrapped, wrapped_top
from sim.common.designs import cache_dir, source_digest
from sim.common.runner import locked

__all__ = ["WrappedDesign"]


@dataclass(frozen=True)
class WrappedDesign:
    """``config``'s design behind the AXI wrapper; ``to_dict()`` is the config's (the cocotb side's settings)."""
    config: object
    wrap: str = "axi"

    @property
    def top(self) -> str:
        return wrapped_top(self.config)

    def to_dict(self) -> dict:
        return self.config.to_dict()

    def verilog(self):
        """Path of the wrapped Verilog, cached like :func:`sim.common.designs.verilog_for`."""
        key = hashlib.sha256((json.dumps([self.wrap, self.config.to_dict()], sort_keys=True)
                              + source_digest()).encode()).hexdigest()
        out = cache_dir() / f"{self.top}-{key[:12]}"
        v_path = out / f"{self.top}.v"
        with locked(out.with_suffix(".lock")):
            if not v_path.exists():
                out.mkdir(parents=True, exist_ok=True)
                tmp = v_path.with_suffix(".tmp")
                tmp.write_text(generate_wrapped(self.config, self.wrap).verilog)
                tmp.replace(v_path)
        return v_path
