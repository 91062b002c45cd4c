"""The distribution: `python -m build` makes a wheel and an sdist with the right contents, and
`make demo` installs only what the demo needs."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import fastapi_cachekit

REPO = Path(__file__).resolve().parents[1]
NAME = "fastapi_cache_kit"  # the distribution fastapi-cache-kit, as file names spell it


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def wheel_names(dist: Path) -> list[str]:
    (wheel,) = dist.glob(f"{NAME}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def wheel_text(dist: Path, member: str) -> str:
    (wheel,) = dist.glob(f"{NAME}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(f"{NAME}-{fastapi_cachekit.__version__}.dist-info/{member}").decode()


def test_the_wheel_holds_the_package_and_nothing_else(dist: Path) -> None:
    names = wheel_names(dist)
    assert "fastapi_cachekit/__init__.py" in names
    assert "fastapi_cachekit/py.typed" in names
    assert "fastapi_cachekit/backends/redis/scripts.py" in names
    for asset in ("dashboard.html", "dashboard.js", "dashboard.css"):  # the dashboard's files
        assert f"fastapi_cachekit/fastapi/static/{asset}" in names
    assert f"{NAME}-{fastapi_cachekit.__version__}.dist-info/licenses/LICENSE" in names
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"fastapi_cachekit", f"{NAME}-{fastapi_cachekit.__version__}.dist-info"}


def test_the_metadata_names_the_free_distribution_name(dist: Path) -> None:
    metadata = Parser().parsestr(wheel_text(dist, "METADATA"))
    assert metadata["Name"] == "fastapi-cache-kit"  # "fastapi-cachekit" is another project
    assert metadata["Version"] == fastapi_cachekit.__version__
    assert metadata["License-Expression"] == "MIT"
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    assert "Framework :: FastAPI" in metadata.get_all("Classifier")


def test_the_command_and_the_pytest_plugin_are_declared(dist: Path) -> None:
    entry_points = wheel_text(dist, "entry_points.txt")
    assert "[console_scripts]\ncachekit = fastapi_cachekit.cli:main" in entry_points
    assert "[pytest11]\ncachekit = fastapi_cachekit.testing" in entry_points


def test_the_sdist_builds_the_same_package(dist: Path) -> None:
    (sdist,) = dist.glob(f"{NAME}-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "LICENSE", "README.md", "fastapi_cachekit/py.typed"} <= names
    assert not any(".venv" in name or "__pycache__" in name for name in names)


def test_the_license_is_mit_for_the_contributors() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "fastapi-cachekit contributors" in text


def test_make_demo_installs_only_the_demo_extra_on_the_given_port(tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # never made: -n only prints the commands
    result = subprocess.run(
        ["make", "-n", "demo", "PORT=8123", f"VENV={venv}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "pip install -q -e '.[demo]'" in result.stdout
    assert "docs" not in result.stdout
    assert "bench" not in result.stdout
    assert "--port 8123" in result.stdout
