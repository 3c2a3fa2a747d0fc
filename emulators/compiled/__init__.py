"""The compiled-emulator land backends (``torchscript``, ``aoti``): artifact loading, features,
the flux and LAI steps on tile rows, and the closure of the network predictions."""
