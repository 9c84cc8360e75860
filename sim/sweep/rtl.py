"""The ``rtl`` stage of a sweep point: a short cocotb run of the point's Verilog against the golden model.

It runs one cocotb test of the design's own test module (the same module and runner as ``make test``:
:func:`sim.common.runner.run_design`, Verilator builds cached by Verilog hash) and reports how many cocotb tests ran
and failed; a failed test, a crashed simulator or a failed build raises with the runner's message.
"""

import os

__all__ = ["TEST_MODULES", "rtl"]

# config kind → (cocotb module, its short test: bit-exact results on the cycle model's cycles)
TEST_MODULES = {
    "systolic": ("sim.systolic.cocotb_array", "streaming_back_to_back"),
    "gemm": ("sim.gemm.cocotb_engine", "back_to_back_cycle_model"),
    "rram": ("sim.rram.cocotb_tile", "program_verify_and_mvm"),
}


def rtl(config, workloads, options, *, work_dir=None) -> dict:
    """Run the kind's short cocotb test under ``options["sim"]`` with seed ``options["seed"]``."""
    from cocotb_tools.check_results import get_results

    from sim.common.runner import run_design

    if config.kind not in TEST_MODULES:
        raise ValueError(f"no cocotb test for {config.kind!r} configs: allowed {', '.join(TEST_MODULES)}")
    module, testcase = TEST_MODULES[config.kind]
    # the runner reports failures through pytest when it thinks it runs inside a pytest test (a serial sweep
    # started by a test): here a failure must be an exception the engine records
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        results = run_design(config, module, options["sim"], seed=options["seed"],
                             testcase=options["testcase"] or testcase)
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    total, failed = get_results(results)
    return {"rtl_tests": total, "rtl_failed": failed}
