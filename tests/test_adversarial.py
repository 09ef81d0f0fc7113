"""The adversarial corpus in tests/adversarial/: every file is refused by `erarm execute` with
exit 2, one error line naming the problem, no traceback and not a single executed step."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).with_name("adversarial")
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
ERARM = str(Path(sys.executable).with_name("erarm"))


def test_every_corpus_file_has_an_expectation():
    files = {p.name for p in CORPUS.iterdir()
             if p.name not in ("expected.json", "README.md", "scene.json")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_is_refused(name, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    done = subprocess.run(
        [ERARM, "execute", str(CORPUS / name), "--task", "pick the blue block into the orange bowl",
         "--scene", str(CORPUS / "scene.json"), "--json", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("erarm: error:")]
    assert len(errors) == 1 and EXPECTED[name] in errors[0], done.stderr
    assert len(errors[0]) < 300  # a 400-digit number is named, not echoed
    if done.stdout.strip():  # refused after looking at the scene: the result says what ran
        assert json.loads(done.stdout)["steps_executed"] == 0
