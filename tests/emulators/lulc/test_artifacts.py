"""The shipped ``lulc-unet`` artifacts: manifest, exported graphs vs eager, conservation, and
skill against the baselines on a held-out region (fresh truth realisation, test seed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from emulators.lulc import data as lulc_data
from emulators.lulc import export as lulc_export
from emulators.lulc import features
from emulators.lulc.conservation import aggregation_error
from emulators.lulc.generator import GeneratorConfig, coarsen, generate
from emulators.lulc.report import acceptance, score
from emulators.lulc.unet import LulcUNet
from emulators.manifest import Manifest, ManifestError
from emulators.recipes import ARTIFACTS, get

RECIPE = get("lulc-unet")
SUBDIR = RECIPE.artifact
DIR = ARTIFACTS / SUBDIR


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return Manifest.load(DIR)


@pytest.fixture(scope="module")
def eager(manifest: Manifest) -> LulcUNet:
    model = RECIPE.eager(DIR, manifest)
    assert isinstance(model, LulcUNet)
    return model


def test_manifest_describes_the_artifact(manifest: Manifest, eager: LulcUNet) -> None:
    assert manifest.name == "lulc-unet" and manifest.architecture == "lulc_unet"
    assert [s.name for s in manifest.inputs] == ["coarse", "features"]
    assert [s.name for s in manifest.outputs] == ["fine"]
    feats = manifest.inputs[1].channels
    assert [c.name for c in feats] == list(features.FEATURE_NAMES)
    assert [c.units for c in feats] == [f.units for f in features.FEATURES]
    assert np.allclose([c.mean for c in feats], eager.feature_mean.numpy())
    assert np.allclose([c.std for c in feats], eager.feature_std.numpy())
    assert len(manifest.training["data_hash"]) == 64
    assert manifest.training["regions"]["test"]
    assert all(v <= 1e-5 for v in manifest.export_checks.values())
    assert set(manifest.export_checks) == {"torchscript", "onnx", "aoti"}
    assert set(manifest.artifacts) == {"torchscript", "onnx", "aoti"}
    assert all(manifest.training["acceptance"].values())
    methods = {r["method"] for r in manifest.skill}
    assert methods == {"lulc_unet", "area_weighted", "bilinear", "mask_aware"}
    total = sum(p.stat().st_size for p in DIR.iterdir())
    assert total < 8 * 2**20  # small enough to commit


def test_the_recipes_know_lulc_unet() -> None:
    for action in ("train", "export", "evaluate"):
        assert callable(getattr(RECIPE, action))


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "aoti"])
def test_exported_artifact_matches_eager_and_conserves(
    manifest: Manifest, eager: LulcUNet, fmt: str
) -> None:
    path = manifest.artifact_path(DIR, fmt)  # sha256 checked
    assert lulc_export.check_artifact(eager, fmt, path) <= 1e-5
    coarse, feats = lulc_export.example_inputs(eager, 2, 3, 7, seed=5)
    if fmt == "onnx":
        from emulators.export import run_onnx

        out = torch.from_numpy(
            run_onnx(path, {"coarse": coarse.numpy(), "features": feats.numpy()})[0]
        )
    elif fmt == "torchscript":
        from emulators.export import load_torchscript

        out = load_torchscript(path)(coarse, feats)
    else:
        from emulators.export import load_aoti

        out = load_aoti(path)(coarse, feats)
    out = out.detach()
    c = coarse.double() / coarse.double().sum(dim=1, keepdim=True)
    assert out.shape == (2, 8, 24, 56)
    assert aggregation_error(out, c, 8) <= 1e-6
    assert float((out.sum(dim=1) - 1).abs().max()) <= 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 + 1e-9


@pytest.mark.parametrize("max_north", [90.0, 52.0])
def test_shipped_artifact_beats_the_baselines_on_a_held_out_region(
    manifest: Manifest, max_north: float
) -> None:
    """The northernmost test region, and the northernmost below ``max_north`` (northern:
    fewer mask rows to decode)."""
    from emulators.export import load_torchscript

    cfg = lulc_data.DataConfig.from_dict(manifest.training["data"])
    regions = [
        lulc_data.Region(**{k: v for k, v in r.items() if k != "label"})
        for r in manifest.training["regions"]["test"]
    ]
    region = max((r for r in regions if r.north <= max_north), key=lambda r: r.north)
    window = region.window(cfg.superblock)
    feats = features.compute(window)
    _, fine = generate(feats, GeneratorConfig(seed=cfg.test_seed))
    tiles = [
        (a, b)
        for a in range(0, cfg.superblock, cfg.tile)
        for b in range(0, cfg.superblock, cfg.tile)
        if 1.0 - fine[-1, a : a + cfg.tile, b : b + cfg.tile].mean() >= cfg.min_land
    ]
    assert tiles
    f = np.stack([fine[:, a : a + cfg.tile, b : b + cfg.tile] for a, b in tiles])
    x = np.stack([feats[:, a : a + cfg.tile, b : b + cfg.tile] for a, b in tiles])
    batch = lulc_data.Batch(
        torch.from_numpy(coarsen(f, cfg.factor).astype(np.float32)),
        torch.from_numpy(np.ascontiguousarray(x)),
        torch.from_numpy(f),
    )
    model = load_torchscript(manifest.artifact_path(DIR, "torchscript"))
    table = score(model, [batch], cfg.factor)
    verdict = acceptance(table)
    assert all(verdict.values()), (region.label(), verdict, table["lulc_unet"])


def test_a_foreign_manifest_is_refused(tmp_path: Path, manifest: Manifest) -> None:
    shutil.copytree(DIR, tmp_path / SUBDIR)
    other = Manifest.load(tmp_path / SUBDIR)
    other.architecture = "flux_lstm"
    other.save(tmp_path / SUBDIR)
    with pytest.raises(ManifestError, match="architecture"):
        RECIPE.eager(tmp_path / SUBDIR)
    ts = tmp_path / SUBDIR / manifest.artifacts["torchscript"]["file"]
    ts.write_bytes(ts.read_bytes()[:-10] + b"0123456789")
    manifest.save(tmp_path / SUBDIR)
    with pytest.raises(ManifestError, match="sha256"):
        RECIPE.eager(tmp_path / SUBDIR)
