"""Verification plumbing shared by every design: stream agents, scoreboard, the cocotb runner, cached builds."""
