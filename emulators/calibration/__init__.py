"""MdPL: differentiable parameter learning through the frozen flux emulator
(docs/calibration.md)."""
