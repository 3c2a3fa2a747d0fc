"""Serving the emulators outside the coupler process: the Triton model repository
(``triton_repo``), a launcher for the Triton server bundled with nvidia-pytriton
(``triton_server``) and the ``triton`` land backend over ``tritonclient`` (``triton_backend``)."""
