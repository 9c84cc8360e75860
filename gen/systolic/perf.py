"""Closed-form cycle model of the ``SparseSystolicArray``, derived from the timing spec in README "Timing".

Every function takes a config-like object (duck-typed: ``.rows``, ``.cols`` and, for :func:`macs`,
``.keep``). Results are in clock cycles and assume no input gaps (``valid`` high whenever the model needs
a beat) and no backpressure (``results__ready`` always high).
"""

from hw import checks

__all__ = ["latency", "load_cycles", "stream_cycles", "job_cycles", "macs"]


def _check_m(m):
    return checks.check_int("m", m, 0)


def _check_cfg(cfg, *fields):
    checks.check_attrs("cfg", cfg, ("rows", "cols", *fields), "a SystolicConfig (or an object with rows, cols)")


def latency(cfg):
    """Cycles from an activation row's handshake to its result row's handshake: ``rows + cols + pe_pipeline``
    (``pe_pipeline`` read with default 0, so config-like objects without it still work)."""
    _check_cfg(cfg)
    return cfg.rows + cfg.cols + getattr(cfg, "pe_pipeline", 0)


def load_cycles(cfg):
    """Cycles (= beats) of one weight load: ``rows``."""
    _check_cfg(cfg)
    return cfg.rows


def stream_cycles(cfg, m):
    """Cycles from the first activation handshake to the last result handshake, inclusive, for ``m``
    back-to-back activation rows: ``m + latency`` (0 when ``m == 0``). Also the ``busy_cycles``
    counter value after such a run."""
    m = _check_m(m)
    return m + latency(cfg) if m else 0


def job_cycles(cfg, m):
    """Cycles from the first weight-beat handshake to the last result handshake, inclusive, for one
    weight load immediately followed by ``m`` back-to-back activation rows: ``rows + m + latency``
    (just the load, ``rows``, when ``m == 0``)."""
    return load_cycles(cfg) + stream_cycles(cfg, m)


def macs(cfg, m):
    """Multiplications performed for ``m`` activation rows: ``m * rows * cols * keep``."""
    m = _check_m(m)
    _check_cfg(cfg, "keep")
    return m * cfg.rows * cfg.cols * cfg.keep
