"""cocotb side of ``sparsegen simulate`` (the host side is :mod:`sim.simulate.run`).

Knobs (:func:`sim.common.tbenv.knob`): ``jobs`` (an ``.npz`` the host wrote), ``out`` (the ``.npz`` this module
writes), ``report`` (a JSON file it writes) and ``progress`` (a small text file ``"<done> <total>"`` it rewrites
every few hundred cycles, which the host turns into a progress bar).

- ``simulate_gemm`` (a GEMM engine): the jobs ``a<i>``, ``w<i>``, ``shift`` run back to back from an ideal host
  (every stream offers a beat every cycle) through :class:`sim.gemm.tb.GemmEngineTB`; the result words are
  recorded, not judged here (the host compares every element with the golden model and names the first that
  differs); the counters are checked by the testbench against the golden MAC counts and the ports, and every result
  cycle against the cycle model. Writes ``c<i>`` (the RTL's C of each job) and the counters.
- ``simulate_rram`` (an RRAM tile): the layer the knobs name is planned again with the compiler (deterministic:
  the same mapping as the host's) and run through :func:`sim.compiler.compiled_layer.run_layer_on_tile`: cells
  programmed, tables loaded, every input vector ``x`` an MVM; writes ``y`` and the registers.
"""

import json
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from sim.common.scoreboard import Scoreboard
from sim.common.tbenv import knob, settings

PROGRESS_CYCLES = 500


class Recorder(Scoreboard):
    """Counts the result words and judges none: the host compares whole matrices and names the first differing
    element (a :class:`Scoreboard` would stop at the first differing beat without saying which element)."""

    def check(self, actual) -> None:
        self.matched += 1


def _write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


async def _progress(dut, done, total, path):
    while True:
        with open(path, "w") as f:
            f.write(f"{done()} {total}")
        await ClockCycles(dut.clk, PROGRESS_CYCLES)


@cocotb.test()
async def simulate_gemm(dut):
    from gen.gemm.config import GemmConfig
    from sim.gemm.driver import gemm_result
    from sim.gemm.tb import GemmEngineTB

    s = settings(GemmConfig)
    cfg = s.config
    t0 = time.perf_counter()
    with np.load(knob("jobs", "")) as data:
        shifts = [int(v) for v in data["shift"]]
        jobs = [(data[f"a{i}"], data[f"w{i}"], shift) for i, shift in enumerate(shifts)]
    tb = GemmEngineTB(dut, cfg, seed=s.seed)
    tb.scoreboard = Recorder("results", dut._log)
    await tb.start()
    tb.submit(jobs)
    total = sum(plan.result_beats for *_, plan in tb.jobs)
    cocotb.start_soon(_progress(dut, lambda: len(tb.results), total, knob("progress", "")))
    got = await tb.finish()                  # counters against the golden MAC counts and the ports
    pred = tb.check_model(got)               # every result cycle and counter against the cycle model
    words, at, out = tb.results.values, 0, {}
    for i, (*_, plan) in enumerate(tb.jobs):
        out[f"c{i}"] = gemm_result(cfg, plan, words[at:at + plan.result_beats])
        at += plan.result_beats
    np.savez(knob("out", ""), **out)
    d0 = tb.sources["desc"].handshake_cycles[0]
    _write_json(knob("report", ""), {"counters": {k: v for k, v in got.items()}, "model_cycles": pred.cycles,
                                     "rtl_cycles": tb.results.handshake_cycles[-1] - d0 + 1,
                                     "sim_cycles": tb.counter.cycle, "wall_s": time.perf_counter() - t0})
    with open(knob("progress", ""), "w") as f:
        f.write(f"{total} {total}")


@cocotb.test()
async def simulate_rram(dut):
    from gen.rram.config import RramTileConfig
    from sim.compiler.compiled_layer import plan_user_layer, run_layer_on_tile
    from sim.rram.tb import RramTileTB

    s = settings(RramTileConfig)
    cfg = s.config
    t0 = time.perf_counter()
    spec = json.loads(knob("layer", "{}"))
    _, _, plan = plan_user_layer(**spec)
    with np.load(knob("jobs", "")) as data:
        X = data["x"]
    tb = RramTileTB(dut, cfg, seed=s.seed)
    tb.scoreboard = Recorder("outputs", dut._log)
    await tb.start()
    done = []
    cocotb.start_soon(_progress(dut, lambda: len(done), len(X), knob("progress", "")))
    Y, regs = await run_layer_on_tile(tb, plan.mapping(), X, done=done)
    np.savez(knob("out", ""), y=Y)
    _write_json(knob("report", ""), {"registers": regs, "sim_cycles": tb.counter.cycle,
                                     "wall_s": time.perf_counter() - t0})
    with open(knob("progress", ""), "w") as f:
        f.write(f"{len(X)} {len(X)}")
