"""AOTInductor packages are compiled for a portable CPU target and refused, never crashed into,
on a CPU that cannot run them (``emulators.cpu_target``)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from emulators import cpu_target
from emulators.manifest import Manifest
from emulators.recipes import ARTIFACTS

PACKAGES = sorted(ARTIFACTS.glob("*/*.pt2"))
X86 = {"AOTI_MACHINE": platform.machine(), "AOTI_CPU_ISA": "AVX2"}


def test_every_shipped_package_records_the_portable_target_and_runs_here() -> None:
    assert len(PACKAGES) == 7
    for path in PACKAGES:
        recorded = cpu_target.metadata(path)
        assert recorded[cpu_target.TARGET_KEY] == cpu_target.target(), path
        if cpu_target.x86():
            assert recorded[cpu_target.ISA_KEY] == "AVX2", path
        cpu_target.check(path, recorded)  # this CPU runs it: no refusal
        assert Manifest.load(path.parent).export_checks["aoti"] <= 1e-5


def test_compile_options_name_the_target_and_its_vector_width() -> None:
    options = cpu_target.compile_options()
    assert options["aot_inductor.metadata"] == {cpu_target.TARGET_KEY: cpu_target.target()}
    if cpu_target.x86():
        assert options["cpp.march"] == "x86-64-v3" and options["cpp.simdlen"] == 256


@pytest.mark.parametrize(
    ("recorded", "rule", "words"),
    [
        ({**X86, "AOTI_MACHINE": "riscv64"}, "cpu_machine", "riscv64"),
        ({**X86, "AOTI_CPU_ISA": "AVX512 MADE_UP_ISA"}, "cpu_isa", "MADE_UP_ISA"),
        (X86, "unknown_target", "-march=native"),
    ],
)
def test_a_package_this_cpu_cannot_run_is_refused_by_rule(
    recorded: dict[str, str], rule: str, words: str
) -> None:
    if rule == "unknown_target" and not cpu_target.x86():
        pytest.skip("an unrecorded target is refused on x86 only")
    with pytest.raises(cpu_target.CPUTargetError) as err:
        cpu_target.check(Path("net.pt2"), recorded)
    assert err.value.rule == rule and words in str(err.value) and "net.pt2" in str(err.value)


def test_missing_target_flags_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_target, "x86", lambda: True)
    monkeypatch.setattr(cpu_target, "cpu_flags", lambda: frozenset({"avx", "sse2"}))
    recorded = {**X86, "AOTI_MACHINE": platform.machine(), cpu_target.TARGET_KEY: "x86-64-v3"}
    monkeypatch.setattr(cpu_target, "supported_isa", lambda: frozenset({"AVX2"}))
    with pytest.raises(cpu_target.CPUTargetError) as err:
        cpu_target.check(Path("net.pt2"), recorded)
    assert err.value.rule == "cpu_target" and "avx2" in str(err.value).split("lacks")[1]
