"""Generator of the GEMM engine (kind ``"gemm"``): ``build`` and ``manifest`` for :data:`gen.verilog.GENERATORS`."""

from hw.bits import describe
from hw.gemm.engine import GemmEngine
from hw.gemm.front import COUNTERS

from gen.gemm.config import GemmConfig
from gen.verilog import CLOCK, manifest_header, stream_ports, streams

__all__ = ["build", "manifest", "PORT_MEANINGS"]

PORT_MEANINGS = {
    "clk": CLOCK,
    "rst": "synchronous active-high reset: clears weights, job state, pipeline and counters",
    **stream_ports("desc", "job descriptor", "job descriptor {m, k, n[, shift]} (hw/gemm/beats.py desc_layout)"),
    **stream_ports("weights", "weight beat",
                   "compressed weights of one PE row of one tile; rows beats per tile, tiles n-major then k"),
    **stream_ports("acts", "activation row",
                   "one K-slice row of A: element i at bits [i*act_bits, (i+1)*act_bits); lanes >= K are ignored"),
    **stream_ports("results", "result row",
                   "one row of one N-tile of C: column c at bits [c*result_bits, (c+1)*result_bits)"),
    "cycles": "clock cycles since reset (wraps)",
    "busy_cycles": "cycles an activation row entered the array (multipliers busy) (wraps)",
    "stall_input": "cycles the engine wanted an activation row and none was offered (wraps)",
    "stall_output": "cycles with results__valid && !results__ready (wraps)",
    "stall_weight": "cycles the array waited for a tile's weight load to finish (wraps)",
    "macs": "multiplications performed on real (unpadded) non-zero activations (wraps)",
    "zero_skips": "multiplications skipped for a real zero activation (wraps)",
    "jobs_done": "jobs whose last result beat has transferred (wraps)",
    "jobs_rejected": "descriptors rejected as out of range (wraps)",
    "error": "cause bits (0 m, 1 k, 2 n, 3 shift) of the last rejected descriptor; 0 until one is rejected",
}


# what differs for dataflow = "os" (README "GEMM engine", "Output-stationary dataflow")
OS_PORT_MEANINGS = PORT_MEANINGS | {
    "weights__valid": "weight beat offered (joined with acts: a step takes one beat of each)",
    "weights__payload": "compressed weights of one K-block of one N-tile's columns; ceil(K/block) beats per tile, "
                        "tiles n-major then m",
    "acts__valid": "activation beat offered (joined with weights: a step takes one beat of each)",
    "acts__payload": "one K-block of one M-tile's rows of A: element (i, b) at bits [(i*block+b)*act_bits, ...); "
                     "rows >= M and lanes >= K are ignored",
    "busy_cycles": "steps (cycles a K-block entered the array) (wraps)",
    "stall_input": "cycles the engine could take a step and acts or weights offered no beat (wraps)",
    "stall_weight": "cycles a job's step was held for the output spacing (tiles with ceil(K/block) < rows) (wraps)",
}


def build(config: GemmConfig) -> GemmEngine:
    """The engine component for a validated :class:`GemmConfig`, built with its ``dataflow`` (WS or OS)."""
    if not isinstance(config, GemmConfig):
        raise TypeError(f"expected a GemmConfig, not {config!r}")
    return GemmEngine(config)


def manifest(config: GemmConfig, top: GemmEngine) -> dict:
    """JSON-ready description of a generated engine (README "GEMM engine" in machine-readable form)."""
    meanings = OS_PORT_MEANINGS if config.dataflow == "os" else PORT_MEANINGS
    return manifest_header(config, top, meanings) | {
        "streams": streams(top, ("desc", "weights", "acts", "results"), describe),
        "dataflow": config.dataflow,
        "tile": ({"k": config.k, "n": config.n_tile, "weight_beats": config.rows,
                  "order": "for each N-tile, for each K-tile: rows weight beats (PE row 0 first), M activation rows"}
                 if config.dataflow == "ws" else
                 {"m": config.rows, "n": config.cols, "k_block": config.block,
                  "order": "for each N-tile, for each M-tile: ceil(K/block) steps, each one activation beat (K-block "
                           "t of the tile's rows of A) joined with one weight beat (K-block t of its columns of W)"}),
        "counters": list(COUNTERS),
        "latency": {"result_cycles": top.latency,
                    "meaning": ("cycles from an activation transfer to its result's first possible transfer"
                                if config.dataflow == "ws" else
                                "cycles from a tile's last step to its last result row's first possible transfer")},
    }
