"""Training, validation and test data of the downscaler: one global domain, split into held-out
regions.

The domain is 76° N – 56° S, all longitudes (Antarctica, where the truth is nearly all ice, is
left out), on the 5′ grid. It is cut into 12° × 12° *super-blocks* (11 × 30); those with at
least ``min_land`` land are shuffled with ``split_seed`` and dealt 70 / 15 / 15 % to training,
validation (early stopping) and test. A super-block is used by exactly one split, so test
regions are never seen in training. Training samples are random ``tile × tile`` crops aligned to
the coarse grid inside training super-blocks; validation and test use the fixed 3 × 3 tiles of
their super-blocks. Truth realisations differ by generator seed too: ``train_seeds`` for
training, ``val_seed`` and ``test_seed`` (never trained on) for the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from emulators.lulc import features as feat
from emulators.lulc.generator import GeneratorConfig, coarsen, fractions_of, generate
from emulators.lulc.grid import N_COLS, PX_PER_DEGREE, Window
from emulators.parameters import N_CLASSES

log = logging.getLogger(__name__)
Split = Literal["train", "val", "test"]

DOMAIN = Window(row0=14 * PX_PER_DEGREE, col0=0, nrows=132 * PX_PER_DEGREE, ncols=N_COLS)


@dataclass(frozen=True)
class DataConfig:
    factor: int = 8
    tile: int = 48
    superblock: int = 144
    split_seed: int = 20240
    split_fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    min_land: float = 0.05
    train_seeds: tuple[int, ...] = (0, 1, 2)
    val_seed: int = 100
    test_seed: int = 200

    def __post_init__(self) -> None:
        if self.factor < 1 or self.tile % self.factor:
            raise ValueError(f"tile: {self.tile} must be a multiple of factor {self.factor}")
        if self.superblock % self.tile:
            raise ValueError(f"superblock: {self.superblock} must be a multiple of tile")
        if DOMAIN.nrows % self.superblock or DOMAIN.ncols % self.superblock:
            raise ValueError(f"superblock: {self.superblock} must divide the domain")
        if abs(sum(self.split_fractions) - 1.0) > 1e-9 or min(self.split_fractions) <= 0:
            raise ValueError(
                f"split_fractions: must be positive and sum to 1, got {self.split_fractions}"
            )
        if not self.train_seeds:
            raise ValueError("train_seeds: need at least one seed")
        held = {self.val_seed, self.test_seed}
        if held & set(self.train_seeds) or self.val_seed == self.test_seed:
            raise ValueError("val_seed and test_seed must differ from each other and train_seeds")
        if not 0.0 <= self.min_land < 1.0:
            raise ValueError(f"min_land: must be in [0, 1), got {self.min_land}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DataConfig:
        """From its ``asdict`` form (as in a manifest; JSON lists back to tuples)."""
        options: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()
        }
        return cls(**options)


@dataclass(frozen=True)
class Region:
    """A super-block: its index and bounds (degrees)."""

    i: int
    j: int
    north: float
    south: float
    west: float
    east: float

    def label(self) -> str:
        def ns(v: float) -> str:
            return f"{abs(v):g}{'N' if v >= 0 else 'S'}"

        def ew(v: float) -> str:
            return f"{abs(v):g}{'E' if v >= 0 else 'W'}"

        return f"{ns(self.south)}-{ns(self.north)} {ew(self.west)}-{ew(self.east)}"

    def window(self, superblock: int) -> Window:
        """The region on the global 5′ grid."""
        return Window(
            DOMAIN.row0 + self.i * superblock, self.j * superblock, superblock, superblock
        )


@dataclass
class Batch:
    """coarse (B, 8, h, w) float32, features (B, 9, H, W) float32, fine (B, 8, H, W) float32."""

    coarse: torch.Tensor
    features: torch.Tensor
    fine: torch.Tensor


@dataclass
class LulcData:
    """Features and truth realisations over the domain, with the region split."""

    config: DataConfig
    features: np.ndarray  # (F, rows, cols) float32
    land_part: np.ndarray  # (rows, cols) float32
    classes: dict[int, np.ndarray]  # seed -> (rows, cols) uint8
    regions: dict[str, list[Region]] = field(default_factory=dict)

    def fine(self, seed: int, r: int, c: int, size: int) -> np.ndarray:
        """(8, size, size) truth fractions of a crop at domain row/col (r, c)."""
        cls = self.classes[seed][r : r + size, c : c + size].astype(np.int64)
        land = self.land_part[r : r + size, c : c + size]
        return fractions_of(cls, land)

    def batch(self, items: list[tuple[int, int, int]], size: int) -> Batch:
        """Stack crops ``(seed, row, col)`` of ``size × size`` pixels."""
        fine = np.stack([self.fine(s, r, c, size) for s, r, c in items])
        feats = np.stack([self.features[:, r : r + size, c : c + size] for _, r, c in items])
        coarse = coarsen(fine, self.config.factor)
        return Batch(
            torch.from_numpy(coarse.astype(np.float32)),
            torch.from_numpy(np.ascontiguousarray(feats)),
            torch.from_numpy(fine),
        )

    def land_share(self, r: int, c: int, size: int) -> float:
        return float(self.land_part[r : r + size, c : c + size].mean())

    def train_crops(self) -> list[tuple[int, int]]:
        """Every coarse-aligned crop origin (row, col) inside training super-blocks with land."""
        cfg = self.config
        out = []
        for reg in self.regions["train"]:
            r0, c0 = reg.i * cfg.superblock, reg.j * cfg.superblock
            for dr in range(0, cfg.superblock - cfg.tile + 1, cfg.factor):
                for dc in range(0, cfg.superblock - cfg.tile + 1, cfg.factor):
                    if self.land_share(r0 + dr, c0 + dc, cfg.tile) >= cfg.min_land:
                        out.append((r0 + dr, c0 + dc))
        return out

    def tiles(self, split: Split) -> list[tuple[int, int]]:
        """The fixed tiles (row, col) of a split's super-blocks that hold land."""
        cfg = self.config
        out = []
        for reg in self.regions[split]:
            for a in range(0, cfg.superblock, cfg.tile):
                for b in range(0, cfg.superblock, cfg.tile):
                    r, c = reg.i * cfg.superblock + a, reg.j * cfg.superblock + b
                    if self.land_share(r, c, cfg.tile) >= cfg.min_land:
                        out.append((r, c))
        return out

    def normalisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature mean and std over the training super-blocks (physical units)."""
        sb = self.config.superblock
        parts = [
            self.features[:, reg.i * sb : (reg.i + 1) * sb, reg.j * sb : (reg.j + 1) * sb]
            for reg in self.regions["train"]
        ]
        x = np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1).astype(np.float64)
        mean, std = x.mean(axis=1), x.std(axis=1)
        return torch.from_numpy(mean).float(), torch.from_numpy(np.maximum(std, 1e-6)).float()


def split_regions(land_part: np.ndarray, config: DataConfig) -> dict[str, list[Region]]:
    """Deal the super-blocks holding land to train/val/test (seeded, documented above)."""
    sb = config.superblock
    ni, nj = land_part.shape[0] // sb, land_part.shape[1] // sb
    share = land_part.reshape(ni, sb, nj, sb).mean(axis=(1, 3))
    cand = [(i, j) for i in range(ni) for j in range(nj) if share[i, j] >= config.min_land]
    order = np.random.default_rng(config.split_seed).permutation(len(cand))
    n_train = round(config.split_fractions[0] * len(cand))
    n_val = round(config.split_fractions[1] * len(cand))
    lat0 = 90.0 - DOMAIN.row0 / PX_PER_DEGREE
    deg = sb / PX_PER_DEGREE

    def region(k: int) -> Region:
        i, j = cand[k]
        return Region(
            i, j, lat0 - i * deg, lat0 - (i + 1) * deg, -180 + j * deg, -180 + (j + 1) * deg
        )

    return {
        "train": [region(k) for k in sorted(order[:n_train])],
        "val": [region(k) for k in sorted(order[n_train : n_train + n_val])],
        "test": [region(k) for k in sorted(order[n_train + n_val :])],
    }


def build(config: DataConfig | None = None, seeds: tuple[int, ...] | None = None) -> LulcData:
    """Features over the domain and truth for ``seeds`` (default: train, val and test seeds).

    Takes ≈ 1–2 min on 2 cores (mask decoding, neighbourhood features, one generator pass per
    seed)."""
    config = config or DataConfig()
    seeds = seeds if seeds is not None else (*config.train_seeds, config.val_seed, config.test_seed)
    log.info("lulc data: static features over %s", DOMAIN)
    features = feat.compute(DOMAIN)
    classes: dict[int, np.ndarray] = {}
    land_part = np.zeros(features.shape[1:], dtype=np.float32)
    for s in seeds:
        log.info("lulc data: land cover, seed %d", s)
        cls, fractions = generate(features, GeneratorConfig(seed=s), periodic=True)
        classes[s] = cls.astype(np.uint8)
        land_part = 1.0 - fractions[N_CLASSES - 1]  # identical for every seed (ice is static)
    data = LulcData(config, features, land_part.astype(np.float32), classes)
    data.regions = split_regions(data.land_part, config)
    return data


def data_hash(data: LulcData) -> str:
    """SHA-256 over the features and every truth realisation (the training-data hash)."""
    import hashlib

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.features).tobytes())
    h.update(np.ascontiguousarray(data.land_part).tobytes())
    for s in sorted(data.classes):
        h.update(str(s).encode())
        h.update(np.ascontiguousarray(data.classes[s]).tobytes())
    return h.hexdigest()
