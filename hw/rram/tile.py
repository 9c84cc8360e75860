"""The RRAM tile top: controller + crossbar model (or ports for an external crossbar) + fault log + register block."""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.rram import beats
from hw.rram.controller import COUNTERS, RramController
from hw.rram.crossbar import CrossbarModel, command_layout, lane_seed, response_bits
from hw.rram.fault_log import FaultLog
from hw.rram.regs import RegisterFile

__all__ = ["RramTile"]


class RramTile(wiring.Component):
    """One RRAM compute-in-memory tile (keyword-only parameters; the generator passes an ``RramTileConfig``'s).

    Parameters
    ----------
    n_xbars, xbar_rows, xbar_cols, cell_bits, ou_rows, ou_cols, dac_bits, adc_bits, pulse_error, read_noise, stuck,
    seed
        The crossbar model's (:class:`hw.rram.crossbar.CrossbarModel`).
    weight_bits, input_bits, input_signed, ou_table_depth, input_capacity, output_capacity, acc_bits, max_iters
        The controller's (:class:`hw.rram.controller.RramController`).
    fault_depth : int
        Fault-log FIFO entries.
    counter_bits : int
        Width of every counter and of ``reg_data``.
    adcs : int or None
        ADCs per crossbar (``adcs_per_xbar``); ``None``: ``ou_cols``.
    crossbar : ``"model"`` or ``"external"``
        Instantiate the crossbar model (default), or leave it out and expose its streams as ``xbar_cmd`` /
        ``xbar_rsp`` (for synthesis of the digital part: the model stands for an analog macro).

    Members
    -------
    program, tables, inputs : In(stream); outputs, faults : Out(stream)
        Beat layouts in :mod:`hw.rram.beats`.
    reg_addr : In(4); reg_data : Out(counter_bits)
        The register block (``beats.REGISTERS``), read combinationally.
    xbar_cmd : Out(stream) array; xbar_rsp : In(stream) array
        Only with ``crossbar="external"``: element x is crossbar x's ``cmd`` and ``rsp`` stream of a one-crossbar
        :class:`hw.rram.crossbar.CrossbarModel` (which documents beats and timing); ports ``xbar_cmd__<x>__*``.
    """

    def __init__(self, *, n_xbars, xbar_rows, xbar_cols, cell_bits, ou_rows, ou_cols, dac_bits, adc_bits,
                 weight_bits, input_bits, input_signed, ou_table_depth, input_capacity, output_capacity, acc_bits,
                 max_iters, fault_depth, counter_bits, pulse_error=0, read_noise=0, stuck=(), seed=1,
                 crossbar="model", adcs=None):
        if crossbar not in ("model", "external"):
            raise ValueError(f"crossbar = {crossbar!r} is not allowed: allowed 'model', 'external'")
        stuck = tuple(stuck)
        # one single-crossbar model per crossbar: the lanes read them in parallel
        self.xbars = [CrossbarModel(n_xbars=1, xbar_rows=xbar_rows, xbar_cols=xbar_cols, cell_bits=cell_bits,
                                    ou_rows=ou_rows, ou_cols=ou_cols, dac_bits=dac_bits, adc_bits=adc_bits,
                                    pulse_error=pulse_error, read_noise=read_noise, seed=lane_seed(seed, x),
                                    stuck=[(0, r, c, lvl) for xs, r, c, lvl in stuck if xs == x])
                      for x in range(n_xbars)] if crossbar == "model" else []
        self.ctl = RramController(n_xbars=n_xbars, xbar_rows=xbar_rows, xbar_cols=xbar_cols, cell_bits=cell_bits,
                                  ou_rows=ou_rows, ou_cols=ou_cols, dac_bits=dac_bits, adc_bits=adc_bits,
                                  weight_bits=weight_bits, input_bits=input_bits, input_signed=input_signed,
                                  ou_table_depth=ou_table_depth, input_capacity=input_capacity,
                                  output_capacity=output_capacity, acc_bits=acc_bits, max_iters=max_iters,
                                  counter_bits=counter_bits, adcs=adcs)
        p = self.ctl.p
        self.log = FaultLog(entry=beats.cell_addr_layout(p), depth=fault_depth, counter_bits=counter_bits)
        self.regs = RegisterFile(width=counter_bits)
        super().__init__({
            "program": In(stream.Signature(beats.program_layout(p))),
            "tables": In(stream.Signature(beats.table_layout(p))),
            "inputs": In(stream.Signature(beats.input_layout(p))),
            "outputs": Out(stream.Signature(beats.output_layout(p))),
            "faults": Out(stream.Signature(beats.cell_addr_layout(p))),
            "reg_addr": In(beats.REG_ADDR_BITS),
            "reg_data": Out(counter_bits),
        } | ({} if self.xbars else {
            "xbar_cmd": Out(stream.Signature(command_layout(n_xbars=1, xbar_rows=xbar_rows, xbar_cols=xbar_cols,
                                                            cell_bits=cell_bits, ou_rows=ou_rows,
                                                            dac_bits=dac_bits))).array(n_xbars),
            "xbar_rsp": In(stream.Signature(unsigned(response_bits(cell_bits=cell_bits, ou_cols=ou_cols,
                                                                   adc_bits=adc_bits)))).array(n_xbars),
        }))

    def elaborate(self, platform):
        m = Module()
        m.submodules.ctl = ctl = self.ctl
        m.submodules.log, m.submodules.regs = log, regs = self.log, self.regs
        for x in range(len(ctl.xbar_cmd)):
            if self.xbars:
                m.submodules[f"xbar{x}"] = xbar = self.xbars[x]
                wiring.connect(m, ctl.xbar_cmd[x], xbar.cmd)
                wiring.connect(m, xbar.rsp, ctl.xbar_rsp[x])
            else:
                wiring.connect(m, ctl.xbar_cmd[x], wiring.flipped(self.xbar_cmd[x]))
                wiring.connect(m, wiring.flipped(self.xbar_rsp[x]), ctl.xbar_rsp[x])
        wiring.connect(m, ctl.fault, log.push)
        wiring.connect(m, wiring.flipped(self.faults), log.pop)
        for name in ("program", "tables", "inputs"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(ctl, name))
        wiring.connect(m, ctl.outputs, wiring.flipped(self.outputs))

        cycles = Signal.like(regs.cycles)
        m.d.sync += cycles.eq(cycles + 1)
        status = Cat(ctl.busy, ctl.tables_valid, log.overflow)
        m.d.comb += [
            regs.addr.eq(self.reg_addr), self.reg_data.eq(regs.data),
            regs.status.eq(status | (ctl.error << beats.STATUS_BITS["error"])),
            regs.fault_count.eq(log.count), regs.fault_dropped.eq(log.dropped), regs.cycles.eq(cycles),
        ]
        m.d.comb += [getattr(regs, name).eq(getattr(ctl, name)) for name in COUNTERS]
        return m
