"""Skill report of the downscaler: scores of the network and the baselines on the held-out test
tiles, as JSON-ready dicts, a Markdown table and a PNG of example tiles; the held-out evaluation
of a shipped artifact (``landcoupler emulators evaluate lulc-unet``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emulators.lulc.data import Batch
from emulators.lulc.skill import BASELINES, Scores
from emulators.manifest import Manifest
from emulators.parameters import N_CLASSES, LandCover

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METHODS = ("lulc_unet", "area_weighted", "bilinear", "mask_aware")


def score(model: Model, batches: Sequence[Batch], factor: int) -> dict[str, dict[str, Any]]:
    """Scores of ``model`` and every baseline over ``batches`` (see ``emulators.lulc.skill``)."""
    scores = {m: Scores.empty(N_CLASSES) for m in METHODS}
    with torch.no_grad():
        for b in batches:
            scores["lulc_unet"].add(
                torch.as_tensor(model(b.coarse, b.features)), b.fine, b.coarse, factor
            )
            for name, fn in BASELINES.items():
                scores[name].add(fn(b.coarse, b.features, factor), b.fine, b.coarse, factor)
    return {m: s.table() for m, s in scores.items()}


def acceptance(table: dict[str, dict[str, Any]], tol: float = 1e-6) -> dict[str, bool]:
    """The U-Net beats area-weighted and bilinear downscaling on accuracy, MAE and mean IoU
    (all pixels and mixed cells) and conserves the coarse fractions to ``tol``."""
    u = table["lulc_unet"]
    out: dict[str, bool] = {}
    for base in ("area_weighted", "bilinear"):
        b = table[base]
        for tag in ("", "_mixed"):
            out[f"accuracy{tag}>{base}"] = u[f"accuracy{tag}"] > b[f"accuracy{tag}"]
            out[f"mae{tag}<{base}"] = u[f"mae{tag}"] < b[f"mae{tag}"]
            out[f"mean_iou{tag}>{base}"] = u[f"mean_iou{tag}"] > b[f"mean_iou{tag}"]
    out[f"conservation<={tol:g}"] = u["max_aggregation_error"] <= tol
    return out


def skill_rows(table: dict[str, dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """Manifest ``skill`` rows: one per method."""
    return [{"method": m, "split": split, **table[m]} for m in METHODS]


def markdown(table: dict[str, dict[str, Any]]) -> str:
    head = (
        "| method | accuracy | accuracy (mixed cells) | MAE | MAE (mixed) | mean IoU "
        "| mean IoU (mixed) | max aggregation error |\n|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for m in METHODS:
        t = table[m]
        rows.append(
            f"| {m} | {t['accuracy']:.4f} | {t['accuracy_mixed']:.4f} | {t['mae']:.4f} "
            f"| {t['mae_mixed']:.4f} | {t['mean_iou']:.4f} | {t['mean_iou_mixed']:.4f} "
            f"| {t['max_aggregation_error']:.1e} |"
        )
    classes = [lc.short for lc in LandCover]
    iou_head = "| method | " + " | ".join(classes) + " |\n|---|" + "---|" * len(classes) + "\n"
    iou_rows = [
        f"| {m} | "
        + " | ".join(f"{table[m]['iou'].get(c, float('nan')):.3f}" for c in classes)
        + " |"
        for m in METHODS
    ]
    return (
        head
        + "\n".join(rows)
        + "\n\nPer-class IoU (dominant class, all pixels):\n\n"
        + iou_head
        + "\n".join(iou_rows)
        + "\n"
    )


def most_mixed(batches: Sequence[Batch], n: int) -> Batch:
    """The ``n`` tiles whose truth has the most distinct dominant classes (ties: first)."""
    items = [(b, i) for b in batches for i in range(b.fine.shape[0])]
    richness = [len(torch.unique(b.fine[i].argmax(0))) for b, i in items]
    order = sorted(range(len(items)), key=lambda k: -richness[k])[:n]
    pick = [items[k] for k in order]
    return Batch(
        torch.stack([b.coarse[i] for b, i in pick]),
        torch.stack([b.features[i] for b, i in pick]),
        torch.stack([b.fine[i] for b, i in pick]),
    )


_COLOURS = ("#05450a", "#78d203", "#b6ff05", "#f096ff", "#dcd159", "#f9ffa4", "#c24f44", "#1c0dff")


def plot_tiles(
    model: Model, batch: Batch, factor: int, path: Path, titles: Sequence[str] = ()
) -> Path:
    """PNG: dominant class of truth, area-weighted, bilinear and U-Net for each tile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    with torch.no_grad():
        maps = {
            "truth": batch.fine,
            "area-weighted": BASELINES["area_weighted"](batch.coarse, batch.features, factor),
            "bilinear": BASELINES["bilinear"](batch.coarse, batch.features, factor),
            "U-Net": torch.as_tensor(model(batch.coarse, batch.features)),
        }
    n = batch.fine.shape[0]
    cmap = ListedColormap(list(_COLOURS))
    fig, axes = plt.subplots(n, 4, figsize=(10, 2.6 * n), squeeze=False)
    for i in range(n):
        for j, (name, m) in enumerate(maps.items()):
            ax = axes[i, j]
            ax.imshow(
                np.asarray(m[i].argmax(0)),
                cmap=cmap,
                vmin=-0.5,
                vmax=N_CLASSES - 0.5,
                interpolation="nearest",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name)
            if j == 0 and i < len(titles):
                ax.set_ylabel(titles[i], fontsize=8)
    handles = [Patch(color=c, label=lc.short) for c, lc in zip(_COLOURS, LandCover, strict=True)]
    fig.legend(handles=handles, loc="lower center", ncol=N_CLASSES, fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write(
    out: Path,
    table: dict[str, Any],
    accept: dict[str, bool],
    model: Any,
    test: list[Any],
    factor: int,
) -> None:
    """``skill.json``, ``skill.md`` and ``tiles.png`` (the most mixed test tiles) to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "skill.json").write_text(
        json.dumps({"skill": table, "acceptance": accept}, indent=2) + "\n"
    )
    (out / "skill.md").write_text(
        "# lulc-unet: held-out test regions\n\n"
        + markdown(table)
        + "\nAcceptance: "
        + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in accept.items())
        + "\n"
    )
    if test:
        plot_tiles(model, most_mixed(test, 4), factor, out / "tiles.png")


def evaluate(directory: Path, out_dir: Path) -> Manifest:
    """Score the TorchScript artifact in ``directory`` and the baselines on the held-out test
    regions (test generator seed; the data take ≈ 1 min to rebuild); write the report to
    ``out_dir`` and update the manifest's skill."""
    from emulators.export import load_torchscript
    from emulators.lulc import data as lulc_data
    from emulators.lulc.train import tile_batches

    manifest = Manifest.load(directory)
    model = load_torchscript(manifest.artifact_path(directory, "torchscript"))
    cfg = lulc_data.DataConfig.from_dict(manifest.training["data"])
    data = lulc_data.build(cfg, seeds=(cfg.test_seed,))
    test = tile_batches(data, data.tiles("test"), cfg.test_seed)
    factor = int(manifest.config["factor"])
    table = score(model, test, factor)
    write(Path(out_dir), table, acceptance(table), model, test, factor)
    manifest.skill = skill_rows(table, "test")
    manifest.save(directory)
    return manifest
