"""The emulator backends' configuration (``EmulatorConfig``) and where the shipped artifacts
live (``ARTIFACTS``); the backends themselves are ``emulator``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emulators.compiled import row_step
from emulators.reference.soil import SoilConfig

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@dataclass(frozen=True)
class EmulatorConfig:
    """``flux``/``lai``: artifact directories of the flux and LAI emulators, one per trained
    timestep (with several, a directory without a manifest is skipped; at least one must load;
    ``lai`` is used only with ``phenology="emulator"``)."""

    artifacts: Path = ARTIFACTS
    flux: tuple[str, ...] = ("flux_lstm", "flux_lstm_daily")
    lai: tuple[str, ...] = ("lai", "lai_daily")
    phenology: str = "emulator"  # "emulator" (LAI emulator) or "reference" (emulated GPP)
    device: str | None = None  # None: CUDA when present (torchscript), else CPU
    #: rows per network call; None: flux 4096 for an in-process network on CPU (temporaries stay
    #: in cache: 0.20 of the matmul peak vs 0.15 at 16 384, docs/benchmarks.md), 262 144 for
    #: the ``fused`` operator (it blocks rows itself), else 16 384
    chunk_rows: int | None = None
    #: rows per block of a step (0: all at once; else a multiple of
    #: ``row_step.ROW_BLOCK_MULTIPLE``): see ``row_step``. Off by default: blocks of 16 384 rows
    #: were not measurably faster on this 2-core machine (docs/emulators.md, "Speed")
    row_block: int = 0
    all_tiles: bool = False
    validate_forcing: bool = True
    soil: SoilConfig = field(default_factory=SoilConfig)
    #: the water tile's fluxes from the reference's physics (``open_water``), not the network
    open_water: bool = True
    #: network calls that spin up a never-stepped row's recurrent state
    #: (``flux_step.spin_up_state``); None: each flux artifact's own (its manifest's
    #: ``recurrent_state.spin_up``, chosen on its validation sources); 0: none
    spin_up: int | None = None
    #: the physics around the flux network (features, water rows, constraint layer) compiled
    #: by TorchInductor (``inductor``; CPU only; agrees with the eager physics to round-off, not
    #: bitwise); None: for the ``fused`` backend only
    compile_physics: bool | None = None

    def __post_init__(self) -> None:
        if self.phenology not in ("emulator", "reference"):
            raise ValueError(
                f"phenology: must be 'emulator' or 'reference', got {self.phenology!r}"
            )
        if self.spin_up is not None and (
            not isinstance(self.spin_up, int) or isinstance(self.spin_up, bool) or self.spin_up < 0
        ):
            raise ValueError(f"spin_up: must be None or an integer >= 0, got {self.spin_up!r}")
        if self.compile_physics is not None and not isinstance(self.compile_physics, bool):
            raise ValueError(
                f"compile_physics: must be None, True or False, got {self.compile_physics!r}"
            )
        if self.chunk_rows is not None and self.chunk_rows < 1:
            raise ValueError(f"chunk_rows: must be >= 1, got {self.chunk_rows}")
        if self.row_block < 0 or self.row_block % row_step.ROW_BLOCK_MULTIPLE:
            raise ValueError(
                f"row_block: must be 0 (no blocks) or a positive multiple of "
                f"{row_step.ROW_BLOCK_MULTIPLE}, got {self.row_block}"
            )
        if isinstance(self.flux, str):
            object.__setattr__(self, "flux", (self.flux,))
        if not self.flux:
            raise ValueError("flux: at least one flux artifact directory is needed")
        if isinstance(self.lai, str):
            object.__setattr__(self, "lai", (self.lai,))
        if self.phenology == "emulator" and not self.lai:
            raise ValueError("lai: at least one LAI artifact directory is needed")
