"""Physical and time constants are defined once, in emulators/constants.py: no other module of
coupler/ or emulators/ gives a name to one of their values again (seconds per day, the years, the
Earth's radii, the thermodynamic constants)."""

from __future__ import annotations

import ast
from pathlib import Path

from emulators import constants as C

ROOT = Path(__file__).resolve().parents[1]
#: values too common to be told apart from unrelated numbers of the same size
_COMMON = {"RHO_WATER", "DAYS_PER_LEAP_YEAR"}
#: not physical constants but the session contract's forcing heights (10 m, 2 m, 200 m), kept
#: beside them because ``coupler.spec`` may import no torch
_COMMON |= {"DEFAULT_HEIGHT_WIND", "DEFAULT_HEIGHT_TEMPERATURE", "MAX_HEIGHT"}


def _numeric_definitions(path: Path) -> list[tuple[str, float, int]]:
    """Module- and class-level ``UPPER_CASE = <number expression>`` definitions of ``path``
    (lower-case class attributes are dataclass fields: a default of one day is not a constant)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, float, int]] = []
    scopes: list[ast.AST] = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]
    for scope in scopes:
        for node in getattr(scope, "body", []):
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            try:
                number = ast.literal_eval(value) if isinstance(value, ast.Constant) else None
                if number is None:
                    number = eval(compile(ast.Expression(value), str(path), "eval"), {}, {})
            except Exception:  # names, calls: derived from something else
                continue
            if isinstance(number, int | float) and not isinstance(number, bool):
                found += [
                    (t.id, float(number), node.lineno)
                    for t in targets
                    if isinstance(t, ast.Name) and t.id.isupper()
                ]
    return found


def _duplicates(files: list[Path]) -> dict[str, str]:
    values = {
        float(v): name
        for name, v in vars(C).items()
        if name.isupper() and isinstance(v, int | float) and name not in _COMMON
    }
    out = {}
    for path in files:
        for name, number, line in _numeric_definitions(path):
            if number in values:
                out[f"{path}:{line} {name}"] = values[number]
    return out


def test_constants_are_defined_once() -> None:
    files = [
        p
        for package in ("coupler", "emulators")
        for p in sorted((ROOT / package).rglob("*.py"))
        if "_proto" not in p.parts and p != ROOT / "emulators" / "constants.py"
    ]
    assert _duplicates(files) == {}


def test_checker_sees_a_second_definition(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("DAY = 86_400\nYEAR_S = 365.25 * 86_400.0\nclass K:\n    R = 6.371e6\nn = 3\n")
    found = set(_duplicates([bad]).values())
    assert found == {"SECONDS_PER_DAY", "SECONDS_PER_JULIAN_YEAR", "EARTH_RADIUS"}
