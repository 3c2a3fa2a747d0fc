"""Layering is law, checked by import analysis of every file (imports inside functions too).

``emulators`` never imports ``coupler``. Inside ``coupler`` the rings, bottom to top, are

    errors -> assimilation -> spec -> core -> replay -> wire -> client -> applications -> tools

and a ring imports only rings below it (and itself), with one narrowing: applications (the
simplified atmosphere, the experiments) reach sessions only through ``coupler.client``, never
through ``coupler.core`` or ``coupler.wire``. Replay drives the core's sessions in-process from a
record (no server, no client), so it sits right above the core and below the wire; the tools
(``landcoupler replay``, ``make bench-replay``) use it. Generated protobuf code is imported only
by the modules that speak the wire. ``import coupler.client`` loads neither torch nor the core.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: ring -> path prefixes of its modules (the longest matching prefix decides)
RINGS: dict[str, tuple[str, ...]] = {
    "errors": ("coupler.errors",),
    "assimilation": ("coupler.assimilation",),
    "spec": ("coupler.spec",),
    "core": ("coupler.core",),
    "replay": ("coupler.replay",),
    "wire": ("coupler.wire", "coupler._proto", "coupler.metrics"),
    "client": ("coupler.client",),
    "applications": ("coupler.atmosphere", "coupler.experiments"),
    "tools": ("coupler.cli", "coupler.bench", "coupler"),
}
ORDER = tuple(RINGS)
#: rings an application may import: the libraries below the service, and the client
APPLICATION_MAY_IMPORT = ("errors", "assimilation", "spec", "client", "applications")
#: the modules that speak the wire and may import the generated code
WIRE_SPEAKERS = (
    "coupler.wire",
    "coupler._proto",
    "coupler.client.remote",
    "coupler.client.remote_session",
    "coupler.client.exchange",
    "coupler.client.shared",
    "coupler.client.stepmsgs",
)


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> list[str]:
    """Every module ``path`` imports (relative imports resolved, ``from a import b`` as both
    ``a`` and ``a.b``), at any depth of the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package[: len(package) - node.level + 1]
                base = ".".join([*head, base] if base else head)
            names.append(base)
            names += [f"{base}.{a.name}" for a in node.names if a.name != "*"]
    return names


def ring_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for ring, prefixes in RINGS.items():
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), ring)
    return best[1] if best else None


def violations(root: Path) -> list[str]:
    """Every broken rule under ``root`` (a tree with ``coupler/`` and ``emulators/``), once per
    module, rule and imported ring."""
    found: list[str] = []
    for path in sorted(root.glob("emulators/**/*.py")):
        for name in imports(path, root):
            if name == "coupler" or name.startswith("coupler."):
                found.append(f"{path.relative_to(root)}: emulators imports coupler")
    for path in sorted(root.glob("coupler/**/*.py")):
        here = module_name(path, root)
        mine = ring_of(here)
        assert mine is not None, here
        for name in imports(path, root):
            if "_proto" in name.split(".") or name.endswith(("_pb2", "_pb2_grpc")):
                if not here.startswith(WIRE_SPEAKERS):
                    found.append(f"{here}: imports generated code")
            if name != "coupler" and not name.startswith("coupler."):
                continue
            theirs = ring_of(name)
            if theirs is None or name == "coupler":
                continue
            if ORDER.index(theirs) > ORDER.index(mine):
                found.append(f"{here} ({mine}) imports {theirs}, a ring above it")
            elif mine == "applications" and theirs not in APPLICATION_MAY_IMPORT:
                found.append(f"{here} (applications) imports {theirs}: use coupler.client")
    return list(dict.fromkeys(found))


def test_every_ring_rule_holds() -> None:
    assert violations(ROOT) == []


def test_every_module_belongs_to_a_ring() -> None:
    for path in ROOT.glob("coupler/**/*.py"):
        assert ring_of(module_name(path, ROOT)) is not None, path


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("emulators/bad.py", "from coupler.client import CouplerClient\n", "emulators imports"),
        ("coupler/assimilation/bad.py", "from coupler.core import session\n", "a ring above"),
        ("coupler/spec/bad.py", "import coupler.core.manager\n", "a ring above"),
        ("coupler/core/bad.py", "def f():\n    from coupler.wire import server\n", "a ring above"),
        ("coupler/atmosphere/bad.py", "from coupler.core.manager import M\n", "use coupler.client"),
        ("coupler/experiments/bad.py", "from coupler.wire import server\n", "use coupler.client"),
        ("coupler/core/bad.py", "from ..wire import fields\n", "a ring above"),
        ("coupler/core/bad.py", "from coupler.replay import source\n", "a ring above"),
        ("coupler/replay/bad.py", "from coupler.client import CouplerClient\n", "a ring above"),
        ("coupler/atmosphere/bad.py", "from coupler.replay import replay\n", "use coupler.client"),
        ("coupler/client/bad.py", "from coupler._proto.landcoupler.v1 import x\n", "generated"),
        ("coupler/spec/bad.py", "from coupler.spec import landcoupler_pb2\n", "generated"),
    ],
)
def test_the_checker_fails_on_a_deliberate_bad_import(
    tmp_path: Path, path: str, source: str, expected: str
) -> None:
    """A tree with one bad import (written here, never in the code) is reported."""
    bad = tmp_path / path
    bad.parent.mkdir(parents=True)
    bad.write_text(source)
    (tmp_path / "coupler").mkdir(exist_ok=True)
    (tmp_path / "coupler" / "errors.py").write_text("")
    found = violations(tmp_path)
    assert len(found) == 1 and expected in found[0], found


def test_a_clean_tree_passes_the_checker(tmp_path: Path) -> None:
    for rel, src in {
        "coupler/errors.py": "",
        "coupler/spec/a.py": "from coupler.errors import InvalidArgument\n",
        "coupler/core/a.py": "from coupler.spec import a\n",
        "coupler/atmosphere/a.py": "from coupler.client import CouplerClient\n",
        "coupler/cli/a.py": "from coupler.core import a\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(src)
    assert violations(tmp_path) == []


def test_importing_the_client_loads_neither_torch_nor_the_core() -> None:
    code = (
        "import sys; import coupler.client; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('coupler.core')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_test_folders_mirror_the_packages() -> None:
    """tests/coupler/X and tests/emulators/Y test the packages coupler/X and emulators/Y."""
    for top in ("coupler", "emulators"):
        for folder in (ROOT / "tests" / top).rglob("*"):
            if folder.is_dir() and folder.name != "__pycache__":
                package = ROOT / folder.relative_to(ROOT / "tests")
                assert (package / "__init__.py").is_file(), f"{folder}: no package {package}"
