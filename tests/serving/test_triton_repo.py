"""``landcoupler emulators export --triton REPO``: one model per emulator with its config (inputs
and outputs with names, dtypes and dims, the explicit recurrent state, batching, instances,
the manifest hash) and the files each platform needs; bad options are refused by name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.compiled.emulator import ARTIFACTS
from emulators.manifest import Manifest
from emulators.serving.triton_repo import (
    DEFAULT_EMULATORS,
    RepositoryOptions,
    write_repository,
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from coupler.cli import main; raise SystemExit(main())", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_writes_a_python_backend_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    done = _cli("emulators", "export", "--triton", str(repo))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in repo.iterdir()) == sorted(DEFAULT_EMULATORS)
    flux = (repo / "flux_lstm" / "config.pbtxt").read_text()
    assert 'name: "flux_lstm"' in flux and 'backend: "python"' in flux
    assert "max_batch_size: 16384" in flux
    hidden = Manifest.load(ARTIFACTS / "flux_lstm").recurrent_state["hidden"]
    assert hidden == 48  # the shipped flux-lstm (docs/emulators.md)
    for line in (
        '{ name: "x" data_type: TYPE_FP32 dims: [ 44 ] }',  # 42 features + 2 heights
        f'{{ name: "h" data_type: TYPE_FP32 dims: [ {hidden} ] }}',
        f'{{ name: "c" data_type: TYPE_FP32 dims: [ {hidden} ] }}',
        '{ name: "y" data_type: TYPE_FP32 dims: [ 5 ] }',
        f'{{ name: "h_out" data_type: TYPE_FP32 dims: [ {hidden} ] }}',
        f'{{ name: "c_out" data_type: TYPE_FP32 dims: [ {hidden} ] }}',
    ):
        assert line in flux, line
    assert "dynamic_batching { max_queue_delay_microseconds: 100 }" in flux
    assert "instance_group [ { count: 1 kind: KIND_CPU } ]" in flux
    manifest = Manifest.load(ARTIFACTS / "flux_lstm")
    assert f'string_value: "{manifest.hash()}"' in flux
    assert re.search(r'key: "recurrent_state" value \{ string_value: "h,c" \}', flux)
    files = sorted(p.name for p in (repo / "flux_lstm" / "1").iterdir())
    assert files == ["model.py", "model.ts"]
    lai = (repo / "lai_daily" / "config.pbtxt").read_text()
    assert '{ name: "dlai" data_type: TYPE_FP32 dims: [ 1 ] }' in lai
    assert 'key: "timestep_seconds" value { string_value: "86400" }' in lai


@pytest.mark.parametrize(
    ("platform", "files", "engine"),
    [
        ("onnxruntime_onnx", ["model.onnx"], 'platform: "onnxruntime_onnx"'),
        ("pytorch_libtorch", ["model.pt"], 'platform: "pytorch_libtorch"'),
        ("tensorrt_plan", ["model.onnx"], 'platform: "tensorrt_plan"'),
    ],
)
def test_other_platforms(tmp_path: Path, platform: str, files: list[str], engine: str) -> None:
    kind = "KIND_GPU" if platform == "tensorrt_plan" else "KIND_CPU"
    write_repository(tmp_path, ARTIFACTS, ("flux_lstm",), RepositoryOptions(platform, kind=kind))
    config = (tmp_path / "flux_lstm" / "config.pbtxt").read_text()
    assert engine in config and "backend:" not in config
    assert sorted(p.name for p in (tmp_path / "flux_lstm" / "1").iterdir()) == files
    if platform == "pytorch_libtorch":  # that backend's output naming
        assert '"y__0"' in config and '"h_out__1"' in config and '"c_out__2"' in config
    if platform == "tensorrt_plan":
        script = (tmp_path / "flux_lstm" / "build_tensorrt.sh").read_text()
        assert "--maxShapes=x:16384x44,h:16384x48,c:16384x48" in script  # H = 48, 44 inputs
        assert "kind: KIND_GPU" in config


def test_bad_options_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="platform: must be one of"):
        RepositoryOptions("tensorflow_savedmodel")
    with pytest.raises(ValueError, match="max_batch_size: must be >= 1, got 0"):
        RepositoryOptions(max_batch_size=0)
    with pytest.raises(ValueError, match="kind: the tensorrt_plan platform runs on KIND_GPU"):
        RepositoryOptions("tensorrt_plan")
    done = _cli("emulators", "export", "lai", "--triton", str(tmp_path / "r"))
    assert done.returncode != 0
    assert "name: with --triton, name emulators with --triton-emulator" in done.stderr
    assert not (tmp_path / "r").exists()
