"""What a user installing the wheel gets: the sample data (so the demo runs), the license,
every dependency the code imports declared, and the extras the code looks for."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from hatchling.builders.wheel import WheelBuilder
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.cli import REPO, SAMPLES, env

PACKAGES = ("engine", "tui", "themes")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    (built,) = WheelBuilder(str(REPO)).build(directory=str(out), versions=["standard"])
    return Path(built)


def _metadata(wheel: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode())
    return {key: message.get_all(key) or [] for key in ("Requires-Dist", "Provides-Extra")}


def test_the_wheel_ships_the_sample_data_and_the_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for sample in SAMPLES.rglob("*.*"):
        assert f"engine/cli/sample_data/{sample.relative_to(SAMPLES)}" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


def test_the_demo_runs_from_the_installed_wheel_without_the_repo(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "tui.launch", "demo", "here"],
        cwd=work,
        env=env(tmp_path, PYTHONPATH=str(site), BATCHDECK_SIM_LATENCY_MS="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (work / "here" / "tickets.jsonl").read_bytes() == (
        SAMPLES / "tickets.jsonl"
    ).read_bytes()
    assert "60 items" in done.stderr


def _imported(package: str) -> set[str]:
    """Top-level names of every module ``package``'s code imports (statically)."""
    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                found.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.partition(".")[0])
    return found


def test_every_distribution_the_code_imports_is_declared(wheel: Path) -> None:
    # An extra declares what only its feature imports (pyarrow for Parquet exports).
    declared = {canonicalize_name(Requirement(r).name) for r in _metadata(wheel)["Requires-Dist"]}
    distributions = packages_distributions()
    ours = set(PACKAGES)
    needed: dict[str, str] = {}
    for package in PACKAGES:
        for module in _imported(package) - ours - set(sys.stdlib_module_names):
            for distribution in distributions.get(module, [module]):
                needed[canonicalize_name(distribution)] = module
    missing = {dist: module for dist, module in needed.items() if dist not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_keyring_the_key_store_looks_for_is_an_extra(wheel: Path) -> None:
    metadata = _metadata(wheel)
    assert "keyring" in metadata["Provides-Extra"]
    keyring = [Requirement(r) for r in metadata["Requires-Dist"] if "keyring" in r]
    assert [r.name for r in keyring] == ["keyring"] and keyring[0].marker is not None
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "keyring" not in pyproject["project"]["dependencies"]
