"""A Fibonacci LFSR bit stream that yields ``bits`` fresh bits per enabled cycle: the crossbar model's dice.

The one definition of the sequence (the numpy mirror, ``sim/rram/lfsr.py``, reproduces it):

- Width 31, characteristic polynomial ``x^31 + x^3 + 1`` (primitive: period ``2**31 - 1``). The stream bits
  obey ``b[k] = b[k-28] XOR b[k-31]``.
- State: the last 31 stream bits, newest in bit 0: ``state[i] = b[k-1-i]`` before bit ``b[k]`` is produced.
  One step: ``new = state[27] ^ state[30]; state = ((state << 1) | new) & (2**31 - 1)``.
- Seed: :func:`seed_state` maps a user seed (``0 … 2**31 - 2``) and a stream number to a non-zero state
  (the all-zero state is the one a Fibonacci LFSR never leaves).
- Draw: a draw of ``n`` bits takes the next ``n`` stream bits, the first one as the LSB:
  ``value = sum(b[k+i] << i for i in range(n))``, and advances the state by ``n`` steps.

:class:`LFSR` computes a whole draw in one cycle: each of its ``bits`` outputs, and each next-state bit, is
the XOR of a fixed subset of the current state bits (found here by unrolling the recurrence symbolically), so
the Verilog has no ``bits``-deep chain of steps.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int

__all__ = ["LFSR", "WIDTH", "TAPS", "PERIOD", "MAX_SEED", "seed_state"]

WIDTH = 31
TAPS = (28, 31)           # b[k] = b[k-28] ^ b[k-31]
PERIOD = (1 << WIDTH) - 1
MAX_SEED = PERIOD - 1
_MASK = (1 << WIDTH) - 1
_STREAM_STRIDE = 0x2545F491   # odd, far from small seeds: stream s of seed x starts at an unrelated state


def seed_state(seed: int, stream: int = 0) -> int:
    """Initial state of LFSR ``stream`` for user ``seed``: ``(seed + stream · 0x2545F491) mod (2**31 - 1) + 1``.

    Every seed in ``0 … 2**31 - 2`` gives a different non-zero state per stream; stream 0 of seed ``x`` starts
    at state ``x + 1``.
    """
    check_int("seed", seed, 0, MAX_SEED)
    check_int("stream", stream, 0, 255)
    return (seed + stream * _STREAM_STRIDE) % PERIOD + 1


def _unrolled(bits: int):
    """Symbolic ``bits`` steps: (stream bit masks, next-state masks), each a bitmask over current state bits."""
    history = [1 << i for i in range(WIDTH)]          # history[i] = b[k-1-i] as a set of state bits
    out = []
    for _ in range(bits):
        new = history[TAPS[0] - 1] ^ history[TAPS[1] - 1]
        out.append(new)
        history = [new] + history[:-1]
    return out, history


class LFSR(wiring.Component):
    """The LFSR of this module's docstring, producing a ``bits``-bit draw per cycle.

    Parameters
    ----------
    bits : int
        Stream bits per draw, 1 … 1024.
    seed : int
        User seed, 0 … 2**31 - 2; the reset state is ``seed_state(seed, stream)``.
    stream : int
        Stream number (0 … 255): independent LFSRs of one design use different streams of one seed.

    Members
    -------
    draw : Out(bits)
        The next draw, combinational from the state: stream bit ``b[k+i]`` at bit ``i``.
    en : In(1)
        Consume the draw: the state advances by ``bits`` steps at the clock edge.

    Timing: ``draw`` is valid in the same cycle; ``en`` takes effect at the next edge. ``rst`` restores the seed
    state.
    """

    def __init__(self, *, bits, seed, stream=0):
        check_int("bits", bits, 1, 1024)
        self._bits = bits
        self._init = seed_state(seed, stream)
        super().__init__({"draw": Out(bits), "en": In(1)})

    @property
    def init_state(self) -> int:
        return self._init

    def elaborate(self, platform):
        m = Module()
        state = Signal(WIDTH, init=self._init)
        stream_masks, next_masks = _unrolled(self._bits)

        def xor_of(mask):
            taps = [state[i] for i in range(WIDTH) if mask >> i & 1]
            return Cat(*taps).xor()

        m.d.comb += self.draw.eq(Cat(*(xor_of(mk) for mk in stream_masks)))
        with m.If(self.en):
            m.d.sync += state.eq(Cat(*(xor_of(mk) for mk in next_masks)))
        return m
