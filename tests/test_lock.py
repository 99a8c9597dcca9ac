"""requirements.lock pins every dependency pyproject.toml declares, at a version its range allows."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def read_pins(text: str) -> dict[str, Version]:
    """Map each package of a pip-compile lock to its pinned version; refuse anything but `==`."""
    pins: dict[str, Version] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, f"not one exact pin: {line}"
        assert specifiers[0].operator == "==", f"not pinned with ==: {line}"
        pins[canonicalize_name(requirement.name)] = Version(specifiers[0].version)
    return pins


def declared_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [
        Requirement(text)
        for text in project["dependencies"] + project["optional-dependencies"]["dev"]
    ]


PINS = read_pins((ROOT / "requirements.lock").read_text(encoding="utf-8"))


@pytest.mark.parametrize("requirement", declared_requirements(), ids=str)
def test_every_declared_dependency_is_pinned_within_its_range(requirement: Requirement) -> None:
    name = canonicalize_name(requirement.name)
    assert name in PINS, (
        f"{requirement} is in pyproject.toml but not in requirements.lock: run make lock"
    )
    assert requirement.specifier.contains(PINS[name], prereleases=True), (
        f"requirements.lock pins {name}=={PINS[name]}, outside {requirement}: run make lock"
    )


@pytest.mark.parametrize("requirement", [r for r in declared_requirements() if r.extras], ids=str)
def test_what_a_requested_extra_pulls_in_is_pinned_too(requirement: Requirement) -> None:
    # The lock is written with --strip-extras, so `flask-limiter[redis]` is pinned through the
    # packages its extra adds (read from the installed package's metadata).
    extra_requirements = [
        needed
        for needed in map(Requirement, metadata.requires(requirement.name) or [])
        if needed.marker is not None
        and any(needed.marker.evaluate({"extra": extra}) for extra in requirement.extras)
    ]
    assert extra_requirements, f"{requirement}: its extra adds nothing (metadata changed?)"
    missing = [str(r) for r in extra_requirements if canonicalize_name(r.name) not in PINS]
    assert not missing, f"{requirement} needs {missing}, not in requirements.lock: run make lock"


def test_torch_is_locked_to_the_cpu_build() -> None:
    assert PINS["torch"].local == "cpu", "a torch without +cpu installs the CUDA build (gigabytes)"


def test_the_lock_only_pins() -> None:
    with pytest.raises(AssertionError, match="not pinned with =="):
        read_pins("flask>=3.1\n")
    assert read_pins("torch==2.13.0+cpu\n    # via campaign-kb\n") == {
        "torch": Version("2.13.0+cpu")
    }
