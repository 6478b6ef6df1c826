"""The lock files pin, with hashes, a version inside every range pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)")


def _pins(lock: str) -> dict[str, Version]:
    """name -> pinned version; every pin must carry at least one hash."""
    text = (ROOT / lock).read_text()
    pins: dict[str, Version] = {}
    for entry in re.split(r"\n(?=\S)", text):
        match = PIN.match(entry)
        if match:
            assert "--hash=sha256:" in entry, f"{lock}: {match.group(1)} has no hash"
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def _declared(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return [Requirement(line) for line in declared]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", _declared()),
        ("requirements-test.lock", _declared() + _declared("test")),
    ],
    ids=["runtime", "test"],
)
def test_every_declared_dependency_is_pinned_inside_its_range(
    lock: str, requirements: list[Requirement]
) -> None:
    pins = _pins(lock)
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]

    for requirement in requirements + [Requirement(line) for line in build_system]:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} does not pin {requirement.name}; run `bash scripts/lock.sh`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]} outside {requirement}; run `bash scripts/lock.sh`"
        )


def test_the_image_and_the_tests_run_the_same_versions() -> None:
    runtime, test = _pins("requirements.lock"), _pins("requirements-test.lock")

    assert {name: test.get(name) for name in runtime} == runtime


def test_the_tested_redis_major_is_the_only_one_allowed() -> None:
    (redis,) = [r for r in _declared() if r.name == "redis"]

    assert _pins("requirements.lock")["redis"].major == 8
    assert not redis.specifier.contains("9.0") and not redis.specifier.contains("7.4")
