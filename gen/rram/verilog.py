"""RramTileConfig → RramTile and its manifest (the generator of kind ``"rram"``, see ``gen/verilog.py``)."""

from hw.bits import leaves
from hw.rram import beats
from hw.rram.tile import RramTile

from gen.rram.config import RramTileConfig
from gen.verilog import CLOCK, manifest_header, stream_ports

__all__ = ["build", "manifest", "PORT_MEANINGS"]

PORT_MEANINGS = {
    "clk": CLOCK,
    "rst": "synchronous active-high reset: clears the controller, tables' valid flag, counters and fault log "
           "(the crossbar cells are non-volatile and keep their levels)",
    **stream_ports("program", "program beat",
                   "one cell: target level, col, row, xbar (write-verified before the next beat is taken)"),
    **stream_ports("tables", "table beat", "kind (HEADER/OU/END; 2 reserved) in bits 1:0, then the entry"),
    **stream_ports("inputs", "input element", "one element of x (input_bits) and last"),
    **stream_ports("outputs", "output element", "one element of y (signed acc_bits, wrapping) and last (on y[N-1])"),
    "faults__valid": "a logged faulty cell is available", "faults__ready": "host pops it this cycle",
    "faults__payload": "address of a cell that failed write-verify: col, row, xbar",
    "reg_addr": "register address (see registers)",
    "reg_data": "the addressed register, combinational",
}
# crossbar = "external" only: one command and one response stream per crossbar x (xbar_cmd__<x>__*, xbar_rsp__<x>__*)
_XBAR_MEANINGS = {
    "xbar_cmd__{x}__valid": "crossbar {x}: command offered (external crossbar)",
    "xbar_cmd__{x}__ready": "crossbar {x} accepts the command this cycle",
    "xbar_cmd__{x}__payload": "crossbar {x} command: op, xbar (0), row, col, level, OU wordline drive (hw/rram/crossbar.py)",
    "xbar_rsp__{x}__valid": "crossbar {x}: response offered, a cell level or an OU's ADC codes",
    "xbar_rsp__{x}__ready": "controller takes crossbar {x}'s response this cycle",
    "xbar_rsp__{x}__payload": "cell level, or ou_cols ADC codes of adc_bits each (column 0 in the low bits)",
}


def build(config: RramTileConfig) -> RramTile:
    """The tile for a validated config."""
    if not isinstance(config, RramTileConfig):
        raise TypeError(f"expected an RramTileConfig, not {config!r}")
    c = config
    return RramTile(n_xbars=c.n_xbars, xbar_rows=c.xbar_rows, xbar_cols=c.xbar_cols, cell_bits=c.cell_bits,
                    ou_rows=c.ou_rows, ou_cols=c.ou_cols, dac_bits=c.dac_bits, adc_bits=c.adc_bits,
                    weight_bits=c.weight_bits, input_bits=c.input_bits, input_signed=c.input_signed,
                    ou_table_depth=c.ou_table_depth, input_capacity=c.input_capacity,
                    output_capacity=c.output_capacity, acc_bits=c.acc_bits, max_iters=c.max_iters,
                    fault_depth=c.fault_depth, counter_bits=c.counter_bits, pulse_error=c.pulse_error,
                    read_noise=c.read_noise, stuck=c.stuck_cells(), seed=c.seed, crossbar=c.crossbar,
                    adcs=c.adcs)


def manifest(config: RramTileConfig, top: RramTile) -> dict:
    """JSON-ready description: ports, beat and table layouts, registers, error codes, ADC resolution."""
    lay = beats.layouts(beats.params_of(config))
    adc = {"adc_bits": config.adc_bits, "lossless_adc_bits": config.lossless_adc_bits, "clips": config.adc_clips,
           "formula": "ceil(log2(ou_rows*(2**cell_bits-1)*(2**dac_bits-1)+1))"}
    if config.adc_clips:
        adc["note"] = (f"adc_bits = {config.adc_bits} is below the lossless resolution {config.lossless_adc_bits}: "
                       f"OU column sums above {2**config.adc_bits - 1} clip. Clipping is part of the design, not a bug.")
    else:
        adc["note"] = "adc_bits is at least the lossless resolution: column sums never clip"
    meanings = dict(PORT_MEANINGS)
    for x in range(config.n_xbars):
        meanings.update({key.format(x=x): text.format(x=x) for key, text in _XBAR_MEANINGS.items()})
    return manifest_header(config, top, meanings) | {
        "streams": {name: {"direction": "out" if name in ("outputs", "faults") else "in",
                           "beat": _describe_struct(layout)} for name, layout in lay.items()},
        "table_kinds": {"HEADER": beats.TABLE_HEADER, "OU": beats.TABLE_OU, "RESERVED": beats.TABLE_RESERVED,
                        "END": beats.TABLE_END},
        "registers": {str(addr): {"name": name, "meaning": meaning} for addr, (name, meaning) in beats.REGISTERS.items()},
        "status_bits": beats.STATUS_BITS,
        "errors": {str(code): {"name": name, "meaning": meaning} for code, (name, meaning) in beats.ERRORS.items()},
        "adc": adc,
        "stuck_cells": len(config.stuck_cells()),
    }


def _describe_struct(layout) -> dict:
    """Width and every leaf (path, offset, width, signedness) of a beat layout."""
    out = {"width": layout.size, "fields": [
        {"name": ".".join(map(str, leaf.path)), "offset": leaf.offset, "width": leaf.width, "signed": leaf.signed}
        for leaf in leaves(layout)]}
    return out
