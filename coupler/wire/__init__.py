"""The wire layer: everything gRPC (proto encoding, status mapping, server, client).

Only this package imports the generated code in ``coupler._proto``; see docs/wire.md.
"""
