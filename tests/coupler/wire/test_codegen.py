"""The committed generated code (coupler/_proto) is what `make proto` generates from proto/, and
it is protoc's output as is (no import rewriting)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from coupler.wire import codegen


def test_generated_code_is_current() -> None:
    diff = codegen.stale()
    assert diff == "", f"coupler/_proto is stale, run `make proto`:\n{diff[:4000]}"


def test_staleness_is_detected(tmp_path: Path) -> None:
    """The check can fail: a generated tree with one changed line is reported, file by file."""
    out = tmp_path / "coupler" / "_proto"
    files = codegen.generate(out)
    assert Path("landcoupler/v1/landcoupler_pb2_grpc.py") in files
    target = out / "landcoupler" / "v1" / "landcoupler_pb2.py"
    target.write_text(target.read_text() + "# edited by hand\n")
    diff = codegen.stale(out)
    assert "+++ generated/landcoupler/v1/landcoupler_pb2.py" in diff
    assert "-# edited by hand" in diff


def test_committed_code_is_bare_protoc_output(tmp_path: Path) -> None:
    """Plain protoc with the virtual proto path, run by hand, writes the committed files byte
    for byte: nothing is post-processed."""
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc", f"-Icoupler/_proto={codegen.PROTO_ROOT}",
        "--python_out=.", "--pyi_out=.", "--grpc_python_out=.",
        "coupler/_proto/landcoupler/v1/landcoupler.proto",
    ]  # fmt: skip
    subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)
    names = ("landcoupler_pb2.py", "landcoupler_pb2.pyi", "landcoupler_pb2_grpc.py")
    for name in names:
        rel = Path("landcoupler/v1") / name
        fresh = (tmp_path / "coupler/_proto" / rel).read_bytes()
        assert fresh == (codegen.GENERATED / rel).read_bytes(), rel


def test_generated_imports_resolve_inside_the_package() -> None:
    from coupler._proto.landcoupler.v1 import landcoupler_pb2, landcoupler_pb2_grpc

    grpc_source = Path(landcoupler_pb2_grpc.__file__).read_text()
    # protoc's own alias for the module (a rewritten import would keep `landcoupler_dot_v1_...`)
    assert (
        "from coupler._proto.landcoupler.v1 import landcoupler_pb2 as "
        "coupler_dot___proto_dot_landcoupler_dot_v1_dot_landcoupler__pb2"
    ) in grpc_source
    assert "\nfrom landcoupler" not in grpc_source
    # the wire names are the proto package's; only the descriptor's file name has the prefix
    assert landcoupler_pb2.DESCRIPTOR.name == "coupler/_proto/landcoupler/v1/landcoupler.proto"
    assert landcoupler_pb2.DESCRIPTOR.package == "landcoupler.v1"
    service = landcoupler_pb2.DESCRIPTOR.services_by_name["LandCoupler"]
    assert service.full_name == "landcoupler.v1.LandCoupler"
    assert landcoupler_pb2.Field.DESCRIPTOR.full_name == "landcoupler.v1.Field"


def test_descriptor_is_the_canonical_one_apart_from_its_name(tmp_path: Path) -> None:
    """The generated descriptor is, byte for byte, the one protoc generates from proto/ under the
    canonical name (``-I proto``, the former layout) once the file name is set back: package,
    messages, fields and services are untouched, so the wire is the same."""
    from coupler._proto.landcoupler.v1 import landcoupler_pb2

    cmd = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{codegen.PROTO_ROOT}",
        f"--python_out={tmp_path}", "landcoupler/v1/landcoupler.proto",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    source = (tmp_path / "landcoupler/v1/landcoupler_pb2.py").read_text()
    (literal,) = re.findall(r"AddSerializedFile\((b'.*')\)\n", source)
    canonical = descriptor_pb2.FileDescriptorProto.FromString(ast.literal_eval(literal))
    assert canonical.name == "landcoupler/v1/landcoupler.proto"
    ours = descriptor_pb2.FileDescriptorProto.FromString(landcoupler_pb2.DESCRIPTOR.serialized_pb)
    assert ours.name == "coupler/_proto/landcoupler/v1/landcoupler.proto"
    assert ours.SerializeToString() != canonical.SerializeToString()
    ours.name = canonical.name
    assert ours.SerializeToString() == canonical.SerializeToString()
