"""The ``hybrid`` backend: the reference land model with its canopy photosynthesis and stomatal
conductance replaced by a compiled network (``canopy-mlp``, ``emulators.nets.canopy``).

Every other phase is the reference's: radiation and roughness, the aerodynamic and leaf
boundary-layer resistances, the energy balance solved for the skin temperature, water, soil heat
and phenology. So the network predicts the one biological quantity the energy balance needs
(the canopy's conductance, and GPP), and pressure, humidity, wind and radiation act on H and LE
through the physics, not through what the network learned: the hybrid holds on weather unlike
its training and from the first step of a session (no recurrent state; docs/emulators.md,
"The hybrid backend"). The network runs in float32 on (member·cell·tile) rows; its outputs are
float64 for the rest of the step, as the reference's.

Artifacts: ``emulators/artifacts/canopy_mlp`` (TorchScript, AOTInductor or ONNX, the manifest's
``loader``). The canopy does not depend on the step length, so any ``dt`` is served; the
network is trained and evaluated on hourly steps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from emulators.compiled.artifacts import LOADERS, load_artifact
from emulators.manifest import Manifest
from emulators.nets.canopy import CANOPY_INPUTS
from emulators.reference import photosynthesis
from emulators.reference.model import ReferenceBackend, ReferenceConfig

Tensor = torch.Tensor
ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "canopy_mlp"
#: the formats the canopy network is served in (``fused`` is an operator for the flux LSTM only:
#: it would run this network's TorchScript artifact under another name)
CANOPY_LOADERS = tuple(name for name in LOADERS if name != "fused")


class HybridBackend(ReferenceBackend):
    """``ReferenceBackend`` with the canopy phase from a network (module docstring)."""

    name = "hybrid"
    #: not ``BatchableBackend``: a matrix product over a joined domain may round differently
    #: from its parts (the reference's bitwise argument holds for elementwise steps only)
    batch_cells = 0

    def __init__(
        self,
        config: ReferenceConfig | None = None,
        loader: str = "torchscript",
        artifact: Path = ARTIFACT,
        net: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__(config)
        if loader not in CANOPY_LOADERS:
            raise ValueError(f"loader: must be one of {CANOPY_LOADERS}, got {loader!r}")
        self.loader = loader
        self.artifact = artifact
        self.manifest = Manifest.load(artifact)
        self.net = net if net is not None else load_artifact(self.manifest, artifact, loader, "cpu")

    def _with_config(self, config: ReferenceConfig) -> HybridBackend:
        """At other forcing heights: the canopy network has no height input (its inputs are
        the leaf's), so the loaded network is shared."""
        return HybridBackend(config, self.loader, self.artifact, self.net)

    def _canopy(self, **inputs: Any) -> photosynthesis.CanopyExchange:
        names = [name for name, _, _ in CANOPY_INPUTS]
        shape = torch.broadcast_shapes(*(inputs[n].shape for n in names))
        x = torch.stack([inputs[n].expand(shape).reshape(-1) for n in names], dim=-1)
        with torch.no_grad():
            y = self.net(x.to(torch.float32))
        y = y.to(torch.float64).reshape(*shape, 2)
        return photosynthesis.CanopyExchange(gpp=y[..., 0], conductance=y[..., 1])
