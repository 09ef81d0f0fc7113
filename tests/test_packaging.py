"""The distribution: a non-editable install must carry the prompts and the console script."""

import re
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """erarm's wheel, built as the suite builds it (no build isolation), and what the build
    printed."""
    folder = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--wheel-dir", str(folder), str(ROOT)],
                          check=True, capture_output=True, text=True, timeout=300)
    return next(folder.glob("erarm-*.whl")), done.stdout + done.stderr


def test_wheel_ships_prompts_packages_and_the_console_script(built):
    wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    for template in ROOT.glob("prompts/*.txt"):
        assert f"prompts/{template.name}" in names
    for package in ("agent", "sim", "robots", "prompts"):
        assert f"{package}/__init__.py" in names
    assert not any(name.startswith("tests/") for name in names)
    metadata = [n for n in names if n.endswith("entry_points.txt")]
    entry_points = zipfile.ZipFile(wheel).read(metadata[0]).decode()
    assert "erarm = agent.cli:main" in entry_points
    assert "sim = robots.sim:open_sim_workcell" in entry_points


def test_prompts_render_from_the_package():
    import prompts

    text = prompts.render("detect", limit=25)
    assert "Limit to 25 objects" in text and "$" not in text


def test_the_build_prints_no_license_warning_and_ships_the_license(built):
    wheel, output = built
    assert "license" not in output.lower(), output  # setuptools' 20-line table deprecation
    names = zipfile.ZipFile(wheel).namelist()
    assert any(re.fullmatch(r"erarm-[^/]+\.dist-info/licenses/LICENSE", n) for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert "License-Expression: Apache-2.0" in metadata.decode()


def test_the_license_file_is_the_apache_2_0_text():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == \
        "Apache-2.0"


def test_dev_extras_hold_what_the_suite_builds_with():
    """The suite builds erarm and the sample plugin with --no-build-isolation, which uses the
    installed setuptools and wheel: a plain `pip install -e '.[dev]'` must bring them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev = {r.name: r for r in map(Requirement, project["project"]["optional-dependencies"]["dev"])}
    assert "wheel" in dev
    needed = next(Requirement(r) for r in project["build-system"]["requires"]
                  if r.startswith("setuptools"))
    assert "setuptools" in dev
    assert _floor(dev["setuptools"]) >= _floor(needed)


def _floor(requirement: Requirement) -> Version:
    return next(Version(s.version) for s in requirement.specifier if s.operator == ">=")


def test_erarm_version_comes_from_the_package_metadata():
    import agent

    done = subprocess.run([Path(sys.executable).parent / "erarm", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"erarm {version('erarm')}\n"
    assert agent.__version__ == version("erarm")
