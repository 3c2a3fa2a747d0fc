"""The recipe of a shipped emulator, and what every recipe does the same way.

A :class:`Recipe` is a frozen config dataclass: its ``name`` (as registered), the ``timestep`` of
the reference trajectories it trains on and of the sessions it serves, and ``options`` that
override fields of its training config (the CLI's ``--seed``/``--epochs``, or a test's tiny
budget). It validates itself in ``__post_init__`` (a supported timestep; options that the training
config knows and accepts). A subclass supplies the recipe's parts:

* **config** — :meth:`config`: the training config (a frozen dataclass that validates itself)
  for the recipe's timestep; a daily variant is the same recipe at 86 400 s;
* **data and loss** — :meth:`fit`: builds the training set and runs the one training loop
  (``emulators.training.trainer``) on the recipe's loss;
* **export** — :meth:`export_spec`: formats, example inputs, dynamic dimensions and the manifest's
  description (state layout included), written by the one export path
  (``emulators.export.export_artifacts``);
* **evaluation** — :meth:`evaluate_at`: the held-out skill report of an artifact, and ``drift``:
  which skill entries :func:`skill_drift` compares after a retraining.

and this class runs them: :meth:`train` (train → export → evaluate → drift), :meth:`export`
(re-export the shipped weights) and :meth:`evaluate`. Nothing here imports torch at import time,
so listing the registered recipes stays cheap.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from torch import nn

    from emulators.export import ExportSpec
    from emulators.manifest import Manifest
    from emulators.training.trainer import TrainResult

log = logging.getLogger(__name__)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WORK = Path("out/emulators")


@dataclass(frozen=True)
class Drift:
    """Which rows and metrics of two skill tables :func:`skill_drift` compares: rows are matched
    by the values of ``match`` and kept where each field of ``only`` has one of its values; the
    result's keys are ``match values/metric`` (``labelled``) or the metric alone."""

    match: tuple[str, ...]
    only: Mapping[str, tuple[str, ...]]
    metrics: tuple[str, ...]
    labelled: bool = True


def skill_drift(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], drift: Drift
) -> dict[str, float]:
    """Relative change ``|new − old| / |old|`` (5 decimals) of each compared metric."""

    def key(r: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(r.get(k) for k in drift.match)

    def kept(r: Mapping[str, Any]) -> bool:
        return all(r.get(f) in values for f, values in drift.only.items())

    before = {key(r): r for r in old if kept(r)}
    out: dict[str, float] = {}
    for r in new:
        if not kept(r) or key(r) not in before:
            continue
        for m in drift.metrics:
            a, b = before[key(r)].get(m), r.get(m)
            if a is None or b is None:
                continue
            parts = [str(v) for v in key(r) if v is not None]  # fields a row lacks are left out
            label = "/".join([*parts, m]) if drift.labelled else m
            out[label] = round(abs(b - a) / max(abs(a), 1e-12), 5)
    return out


def recorded_config(config: Any) -> dict[str, Any]:
    """``config`` as the manifest records it: ``dataclasses.asdict`` without the fields marked
    ``metadata={"recorded": "when set"}`` that hold their default, at any depth (options added
    after shipped artifacts were trained, so that those manifests stay what their training
    wrote; e.g. ``SourceSpec.heights`` in the sources of a config)."""
    out: dict[str, Any] = _recorded(config)
    return out


def _recorded(value: Any) -> Any:
    """``dataclasses.asdict``'s conversion with the "recorded when set" rule."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.metadata.get("recorded") == "when set" and item == f.default:
                continue
            out[f.name] = _recorded(item)
        return out
    if isinstance(value, list | tuple):
        return type(value)(_recorded(v) for v in value)
    if isinstance(value, dict):
        return {k: _recorded(v) for k, v in value.items()}
    return copy.deepcopy(value)


def training_record(
    name: str,
    config: Any,
    result: TrainResult,
    held_out: Sequence[Any],
    seconds: float,
    loss: str = "",
    best_epoch: bool = True,
) -> dict[str, Any]:
    """The manifest's ``training`` entry of ``landcoupler emulators train NAME`` for a training
    config with ``train``/``validation`` sources: data (hash, the reference model's fingerprint,
    training/validation/held-out sources), config, [loss,] history, [best epoch,] time."""
    import torch

    from emulators.reference.fingerprint import fingerprint

    record: dict[str, Any] = {
        "command": f"landcoupler emulators train {name}",
        "data_hash": result.data_hash,
        "reference_fingerprint": fingerprint(),
        "sources": [_recorded(s) for s in config.train],
        "validation": [_recorded(s) for s in config.validation],
        "held_out": [_recorded(s) for s in held_out],
        "config": recorded_config(config),
    }
    if "heights" in result.extra:  # a network with the height features: what it serves
        record["heights"] = result.extra["heights"]
    if loss:
        record["loss"] = loss
    record["history"] = result.history
    if best_epoch:
        record["best_epoch"] = result.best_epoch
    return record | {
        "seconds": round(seconds, 1),
        "threads": config.threads,
        "torch": torch.__version__,
    }


@dataclass(frozen=True)
class Recipe(abc.ABC):
    """How one shipped emulator is trained, exported and evaluated (module docstring)."""

    name: str
    timestep: int = 3600
    options: Mapping[str, Any] = field(default_factory=dict)

    architecture: ClassVar[str] = ""
    description: ClassVar[str] = ""
    loss: ClassVar[str] = ""  # what the training minimises (documentation; docs/emulators.md)
    timesteps: ClassVar[tuple[int, ...]] = (3600,)
    drift: ClassVar[Drift | None] = None
    scores_while_training: ClassVar[bool] = False  # skill from fit, not from the artifact
    epochs_option: ClassVar[tuple[str, int]] = ("epochs", 1)  # what --epochs N sets: (field, ×)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", self.name):
            raise ValueError(f"name: lower-case words joined by '-', got {self.name!r}")
        if self.timestep not in self.timesteps:
            raise ValueError(
                f"timestep: {self.name} ({type(self).__name__}) has a training configuration "
                f"for {', '.join(f'{t} s' for t in self.timesteps)}; got {self.timestep} s"
            )
        object.__setattr__(self, "options", dict(self.options))
        self.config()  # the training config validates the options

    @property
    def artifact(self) -> str:
        """The artifact directory (under the artifacts root) and file stem."""
        return self.name.replace("-", "_")

    def with_cli(self, seed: int | None = None, epochs: int | None = None) -> Recipe:
        """This recipe with the CLI's ``--seed``/``--epochs`` (``epochs_option``) applied."""
        changes: dict[str, Any] = {} if seed is None else {"seed": seed}
        if epochs is not None:
            option, factor = self.epochs_option
            changes[option] = factor * epochs
        return dataclasses.replace(self, options={**self.options, **changes})

    def configured(self, base: Any) -> Any:
        """``base`` (a training config dataclass) with ``options`` applied and re-validated."""
        known = {f.name for f in dataclasses.fields(base)}
        if unknown := sorted(set(self.options) - known):
            raise ValueError(f"{self.name}: unknown option(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(base, **self.options)

    # ---- the recipe's parts ------------------------------------------------------------------
    @abc.abstractmethod
    def config(self) -> Any:
        """The training config at ``timestep`` with ``options`` (:meth:`configured`)."""

    @abc.abstractmethod
    def fit(self, config: Any, work: Path, progress: bool) -> TrainResult:
        """Build the training set and train (``trainer.fit`` on the recipe's loss); data cache,
        checkpoints and best weights under ``work``."""

    @abc.abstractmethod
    def network(self, config: Mapping[str, Any]) -> nn.Module:
        """The untrained network of a manifest's architecture ``config``, as exported."""

    @abc.abstractmethod
    def architecture_config(self, config: Any, model: nn.Module) -> dict[str, Any]:
        """The manifest's architecture config of a trained ``model``."""

    @abc.abstractmethod
    def export_spec(self, model: nn.Module, config: dict[str, Any]) -> ExportSpec:
        """How ``model`` (what the artifacts compute) is exported and described."""

    @abc.abstractmethod
    def evaluate_at(
        self, directory: Path, out_dir: Path, cache: Path | None, progress: bool
    ) -> Manifest:
        """Held-out skill of the artifact in ``directory``: report to ``out_dir``, skill into the
        manifest."""

    def evaluate_at_step(
        self, directory: Path, out_dir: Path, cache: Path | None, progress: bool, timestep: int
    ) -> Manifest:
        """Held-out skill at land steps of ``timestep`` seconds other than the trained one: a
        report to ``out_dir`` only (the manifest keeps the trained step's skill). Only an
        emulator that serves any step implements it (``canopy-mlp``, in the hybrid backend)."""
        del directory, out_dir, cache, progress
        raise ValueError(
            f"timestep: {self.name} is evaluated at the step it was trained for; only an "
            f"emulator that serves any step (canopy-mlp) is evaluated at {timestep} s"
        )

    def servable(self, model: nn.Module) -> nn.Module:
        """The module the artifacts compute, from the trained network (default: itself)."""
        return model

    @abc.abstractmethod
    def training_record(self, config: Any, result: TrainResult, seconds: float) -> dict[str, Any]:
        """The manifest's training record (data, budget, best epoch, seconds)."""

    def trained_skill(self, result: TrainResult) -> list[dict[str, Any]]:
        """Skill measured during :meth:`fit` (``scores_while_training``)."""
        return []

    def after_export(self, result: TrainResult, work: Path) -> None:
        """Anything written once the artifacts are (reports of ``scores_while_training``);
        by default nothing."""
        return None

    def compare(self, artifacts: Path, out_dir: Path, cache: Path | None, progress: bool) -> None:
        """After :meth:`evaluate`: reports of other artifacts on the same held-out data; by
        default none."""
        return None

    # ---- what every recipe does the same way -------------------------------------------------
    def export_model(
        self,
        model: nn.Module,
        directory: Path,
        training: dict[str, Any],
        skill: Sequence[dict[str, Any]] = (),
        compile_aoti: bool = True,
        config: dict[str, Any] | None = None,
    ) -> Manifest:
        """Artifacts + manifest of ``model`` (what the artifacts compute) in ``directory``;
        ``config``: its architecture config for the manifest (default:
        :meth:`architecture_config` with the recipe's training config)."""
        from emulators.export import export_artifacts

        if config is None:
            config = self.architecture_config(self.config(), model)
        spec = self.export_spec(model, config)
        return export_artifacts(
            model,
            directory,
            spec,
            name=self.name,
            training=training,
            skill=skill,
            compile_aoti=compile_aoti,
        )

    def train(
        self,
        artifacts: Path = ARTIFACTS,
        work: Path = WORK,
        progress: bool = True,
        compile_aoti: bool = True,
        evaluate: bool = True,
    ) -> Manifest:
        """``landcoupler emulators train NAME``: from scratch, train → export (three formats,
        checked) → manifest → held-out skill; prints the skill change against the previous
        artifact (``drift``)."""
        from emulators.manifest import Manifest

        directory, work = Path(artifacts) / self.artifact, Path(work)
        had = self.drift is not None and (directory / "manifest.json").exists()
        previous = Manifest.load(directory).skill if had else []
        config = self.config()
        t0 = time.perf_counter()
        result = self.fit(config, work, progress)
        seconds = time.perf_counter() - t0
        model = self.servable(result.model)
        manifest = self.export_model(
            model,
            directory,
            self.training_record(config, result, seconds),
            self.trained_skill(result),
            compile_aoti,
            self.architecture_config(config, model),
        )
        self.after_export(result, work)
        if evaluate and not self.scores_while_training:
            manifest = self.evaluate_at(
                directory, work / f"report-{self.name}", work / "data", progress
            )
        if previous and manifest.skill and self.drift is not None:
            drift = skill_drift(previous, manifest.skill, self.drift)
            log.info("skill change vs the previous artifact: %s", drift)
            if progress:
                print(f"skill change vs the previous artifact (relative): {json.dumps(drift)}")
        return manifest

    def eager(self, directory: Path, manifest: Manifest | None = None) -> nn.Module:
        """The eager module of a shipped artifact (eval mode): the manifest's architecture config
        and the weights inside its (sha256-checked) TorchScript file."""
        from emulators.export import load_torchscript
        from emulators.manifest import Manifest, ManifestError

        manifest = manifest or Manifest.load(directory)
        if manifest.architecture != self.architecture:
            raise ManifestError(
                "architecture",
                f"{directory}: architecture {manifest.architecture!r}, "
                f"expected {self.architecture!r}",
            )
        model = self.servable(self.network(manifest.config))
        ts = load_torchscript(manifest.artifact_path(directory, "torchscript"))
        model.load_state_dict(ts.state_dict())
        return model.eval()

    def export(self, artifacts: Path = ARTIFACTS, work: Path = WORK) -> Manifest:
        """``landcoupler emulators export NAME``: re-export the three formats from the weights
        of the shipped TorchScript artifact, keeping the manifest's training record and skill."""
        from emulators.manifest import Manifest

        del work
        directory = Path(artifacts) / self.artifact
        old = Manifest.load(directory)
        model = self.eager(directory, old)
        return self.export_model(model, directory, old.training, old.skill, config=old.config)

    def evaluate(
        self,
        artifacts: Path = ARTIFACTS,
        out_dir: Path | None = None,
        cache: Path | None = WORK / "data",
        progress: bool = True,
        timestep: int | None = None,
    ) -> Manifest:
        """``landcoupler emulators evaluate NAME``: held-out skill of the shipped artifact
        (report to ``out_dir``, default ``out/emulators/report-NAME``; updates its manifest).
        ``timestep``: at land steps of that length instead (:meth:`evaluate_at_step`: a report
        only, the manifest unchanged)."""
        out = WORK / f"report-{self.name}" if out_dir is None else Path(out_dir)
        directory = Path(artifacts) / self.artifact
        if timestep is not None:
            return self.evaluate_at_step(directory, out, cache, progress, timestep)
        manifest = self.evaluate_at(directory, out, cache, progress)
        self.compare(Path(artifacts), out, cache, progress)
        return manifest
