"""Import boundaries (pyproject.toml [tool.importlinter]): the contracts hold, and each one catches a violation."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import ROOT

pytestmark = pytest.mark.slow  # a lint-imports process per contract

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
PACKAGES = ("agent", "apps", "envvars", "rtcstack_site", "speech")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("agent/violation.py", "from apps.transcription import live\n", "agent imports neither the Django apps"),
        ("agent/violation.py", "import rtcstack_site\n", "agent imports neither the Django apps"),
        ("apps/rooms/violation.py", "from agent import core\n", "apps do not import the agent"),
        ("speech/violation.py", "from django.conf import settings\n", "speech is owned by neither Django"),
        ("speech/violation.py", "from apps.transcription import models\n", "speech is owned by neither Django"),
        ("apps/core/violation.py", "from apps.rooms import models\n", "apps.core imports no other app"),
        ("envvars/violation.py", "from django.conf import settings\n", "envvars imports nothing of the project"),
        ("envvars/violation.py", "import speech\n", "envvars imports nothing of the project"),
    ],
)
def test_a_deliberate_violation_breaks_its_contract(tmp_path, module, source, contract):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / module).write_text(source)

    result = lint_imports(tmp_path)

    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert len(broken) == 1, result.stdout
    assert broken[0].startswith(contract)
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
