"""The distribution: a non-editable install must carry the prompts and the console script."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_prompts_packages_and_the_console_script(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(tmp_path), str(ROOT)], check=True, timeout=300)
    wheel = next(tmp_path.glob("erarm-*.whl"))
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
