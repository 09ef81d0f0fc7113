"""The distribution: one import name, `erarm`, carrying every module, the prompts and the console
script, in a non-editable install as in the editable one."""

import json
import os
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import one_at_a_time

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """erarm's wheel, built as the suite builds it (no build isolation), and what the build
    printed."""
    folder = tmp_path_factory.mktemp("wheel")
    with one_at_a_time("erarm-wheel"):  # two builds of one tree collide in its build/
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                               "--no-build-isolation", "--wheel-dir", str(folder), str(ROOT)],
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return next(folder.glob("erarm-*.whl")), done.stdout + done.stderr


def test_wheel_ships_every_module_under_one_import_name(built):
    wheel, _ = built
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("agent", "sim", "robots", "prompts"):  # the source tree's folders ...
        for source in (ROOT / folder).rglob("*"):
            if source.suffix in (".py", ".txt", ".json") and "__pycache__" not in source.parts:
                # ... each file installed under erarm/
                assert f"erarm/{source.relative_to(ROOT).as_posix()}" in names, source
    assert {"erarm/__init__.py", "erarm/__main__.py"} <= names
    for asset in (ROOT / "sim" / "assets" / "household").iterdir():  # meshes, textures, sources
        assert f"erarm/sim/assets/household/{asset.name}" in names, asset
    assert {name.split("/")[0] for name in names} == {"erarm", "erarm-0.1.0.dist-info"}
    top_level = next(n for n in names if n.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["erarm"]
    metadata = [n for n in names if n.endswith("entry_points.txt")]
    entry_points = zipfile.ZipFile(wheel).read(metadata[0]).decode()
    assert "erarm = erarm.agent.cli:main" in entry_points
    assert "sim = erarm.sim.driver:open_sim_workcell" in entry_points


@pytest.fixture(scope="module")
def fresh_venv(built, tmp_path_factory) -> Path:
    """A new venv with only erarm's wheel installed; its dependencies come from this one's
    site-packages through a .pth file (which holds no erarm: it is installed editable here)."""
    wheel, _ = built
    home = tmp_path_factory.mktemp("venv") / "venv"
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=300)
    site = next((home / "lib").glob("python3*/site-packages"))
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and
                (p / "pydantic").is_dir())
    (site / "erarm_test_deps.pth").write_text(f"{deps}\n")
    return home


def _in(home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(home / "bin" / args[0]), *args[1:]], capture_output=True,
                          text=True, timeout=120, cwd=cwd, check=False)


@pytest.mark.parametrize("where", ["elsewhere", "in the source tree"])
def test_an_installed_erarm_is_one_import_name(fresh_venv, tmp_path, where):
    """`import erarm` works and `import agent` does not, wherever the user stands, and the
    version is the distribution's, from the command, `python -m erarm` and the package."""
    cwd = ROOT if where == "in the source tree" else tmp_path
    expected = f"erarm {version('erarm')}\n"
    assert _in(fresh_venv, "erarm", "--version", cwd=cwd).stdout == expected
    assert _in(fresh_venv, "python", "-m", "erarm", "--version", cwd=cwd).stdout == expected
    probe = _in(fresh_venv, "python", "-I", "-c", "import erarm, erarm.agent.run, "
                "erarm.sim.driver; print(erarm.__version__, erarm.agent.run.__file__)", cwd=cwd)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split()[0] == version("erarm")
    assert str(fresh_venv) in probe.stdout  # the installed copy, not the source tree
    for generic in ("agent", "sim", "robots", "prompts"):
        refused = _in(fresh_venv, "python", "-I", "-c", f"import {generic}", cwd=tmp_path)
        assert "ModuleNotFoundError" in refused.stderr, generic


def test_a_users_own_sim_package_does_not_shadow_erarms(fresh_venv, tmp_path):
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "__init__.py").write_text("raise ImportError('the user\'s own sim')\n")
    done = subprocess.run([str(fresh_venv / "bin" / "erarm"), "run", "pick the blue block into "
                           "the orange bowl", "--seed", "3", "--dry-run", "--json"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dry_run"] is True


def test_prompts_render_from_the_package():
    from erarm import prompts

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
    import erarm

    done = subprocess.run([Path(sys.executable).parent / "erarm", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"erarm {version('erarm')}\n"
    assert erarm.__version__ == version("erarm")
