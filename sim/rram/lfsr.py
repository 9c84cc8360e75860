"""numpy mirror of the LFSR bit stream of :mod:`hw.rram.lfsr` (same polynomial, seed mapping and draw rule).

Written from the recurrence, not the RTL: the stream bits obey ``b[k] = b[k-28] XOR b[k-31]``, so 28 bits at a
time can be computed with one vectorized XOR of earlier bits. Draws take the next ``n`` bits, first bit as LSB.
"""

import numpy as np

from hw import checks
from hw.rram.lfsr import TAPS, WIDTH, seed_state

__all__ = ["LfsrMirror"]

_SHORT, _LONG = TAPS
_BLOCK = _SHORT          # b[k .. k+27] only need bits at least 28 back


class LfsrMirror:
    """The bit stream of LFSR ``stream`` seeded with ``seed``, consumed in draws.

    Parameters
    ----------
    seed : int
        0 … 2**31 - 2 (as :func:`hw.rram.lfsr.seed_state`).
    stream : int
        Stream number, 0 … 255.

    Attributes
    ----------
    state : int
        The hardware register's value: the last 31 stream bits, newest in bit 0.
    """

    def __init__(self, seed: int, stream: int = 0):
        s = seed_state(seed, stream)
        # history, oldest first: history[j] = b[k-31+j], and state bit i = b[k-1-i]
        self._history = np.array([(s >> (WIDTH - 1 - j)) & 1 for j in range(WIDTH)], dtype=np.uint8)
        self.bits_drawn = 0

    @property
    def state(self) -> int:
        return int(sum(int(b) << (WIDTH - 1 - j) for j, b in enumerate(self._history)))

    def bits(self, n: int) -> np.ndarray:
        """The next ``n`` stream bits (uint8 0/1), advancing the stream by ``n``."""
        n = checks.check_int("n", n, 0, allowed="0 or more bits")
        e = np.empty(WIDTH + n, dtype=np.uint8)
        e[:WIDTH] = self._history
        for i in range(0, n, _BLOCK):
            j = min(n, i + _BLOCK)
            # e[WIDTH + i] = b[k+i] = b[k+i-28] ^ b[k+i-31] = e[i + 3] ^ e[i]
            e[WIDTH + i:WIDTH + j] = e[i + WIDTH - _SHORT:j + WIDTH - _SHORT] ^ e[i + WIDTH - _LONG:j + WIDTH - _LONG]
        self._history = e[n:].copy()
        self.bits_drawn += n
        return e[WIDTH:]

    def draws(self, count: int, width: int) -> np.ndarray:
        """``count`` consecutive draws of ``width`` (1 … 62) bits each (int64), first stream bit of a draw as its LSB."""
        count = checks.check_int("count", count, 0)
        width = checks.check_int("width", width, 1, 62, allowed="1 … 62 for int64 draws (use draw())")
        b = self.bits(count * width).reshape(count, width).astype(np.int64)
        return b @ (np.int64(1) << np.arange(width, dtype=np.int64))

    def draw(self, width: int) -> int:
        """One draw of ``width`` bits, any width (a Python int)."""
        width = checks.check_int("width", width, 0)
        b = self.bits(width)
        return int.from_bytes(np.packbits(b, bitorder="little").tobytes(), "little")
