"""The committed generated code (coupler/_proto) is what `make proto` generates from proto/."""

from __future__ import annotations

from pathlib import Path

from coupler.wire import codegen


def test_generated_code_is_current() -> None:
    diff = codegen.stale()
    assert diff == "", f"coupler/_proto is stale, run `make proto`:\n{diff[:4000]}"


def test_staleness_is_detected(tmp_path: Path) -> None:
    """The check can fail: a generated tree with one changed line is reported, file by file."""
    out = tmp_path / "_proto"
    files = codegen.generate(out)
    assert Path("landcoupler/v1/landcoupler_pb2_grpc.py") in files
    target = out / "landcoupler" / "v1" / "landcoupler_pb2.py"
    target.write_text(target.read_text() + "# edited by hand\n")
    diff = codegen.stale(out)
    assert "+++ generated/landcoupler/v1/landcoupler_pb2.py" in diff
    assert "-# edited by hand" in diff


def test_generated_imports_resolve_inside_the_package() -> None:
    from coupler._proto.landcoupler.v1 import landcoupler_pb2, landcoupler_pb2_grpc

    grpc_source = Path(landcoupler_pb2_grpc.__file__).read_text()
    assert "from coupler._proto.landcoupler.v1 import landcoupler_pb2" in grpc_source
    assert "\nfrom landcoupler" not in grpc_source
    # the descriptor keeps its canonical name (what reflection serves)
    assert landcoupler_pb2.DESCRIPTOR.name == "landcoupler/v1/landcoupler.proto"
    assert landcoupler_pb2.DESCRIPTOR.package == "landcoupler.v1"
