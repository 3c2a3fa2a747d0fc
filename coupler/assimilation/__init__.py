"""Online ensemble data assimilation (core ring: plain Python and tensors, no gRPC).

Filters are pure functions on (member, state) float64 tensors: :func:`filters.analyse` runs one
analysis (inflation, forward operator, screening, EAKF/EnKF/ETKF/LETKF update, bounds,
diagnostics). See docs/assimilation.md.
"""
