"""The README's worked signing example must be exactly what the signer computes."""

import hashlib
import re
from pathlib import Path

from apps.apikeys.signer import signed_headers
from tests.support.servers import ROOT


def test_worked_example_values() -> None:
    readme = (ROOT / "README.md").read_text()
    body = re.search(r"^body\s+(\{.*\})$", readme, re.MULTILINE).group(1).encode()
    body_hash = re.search(r"^body hash\s+([0-9a-f]{64})$", readme, re.MULTILINE).group(1)
    signature = re.search(r"^X-RTCstack-Signature: (sha256=[0-9a-f]{64})$", readme, re.MULTILINE).group(1)
    assert hashlib.sha256(body).hexdigest() == body_hash
    headers = signed_headers("rk_demo", "s3cret", "POST", "/v1/token", body, timestamp=1700000000)
    assert headers == {
        "X-Api-Key": "rk_demo",
        "X-RTCstack-Timestamp": "1700000000",
        "X-RTCstack-Signature": signature,
    }


def shell_lines(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def programs_the_suite_runs() -> dict[str, set[str]]:
    """Every program a test starts by name: shutil.which("x"), subprocess.*(["x", …]) and "/usr/bin/x"."""
    patterns = [
        r'shutil\.which\("([^"]+)"\)',
        r'subprocess\.(?:run|Popen|check_call|check_output)\(\s*\[\s*"([^"]+)"',
        r'"/usr/bin/([^"/]+)"',
    ]
    found: dict[str, set[str]] = {}
    for source in (ROOT / "tests").rglob("*.py"):
        if source == Path(__file__).resolve():  # this file names the patterns, not programs
            continue
        text = source.read_text()
        for pattern in patterns:
            for name in re.findall(pattern, text):
                if "/" not in name:  # not the project's own ./run.sh or .venv/bin/python
                    found.setdefault(name, set()).add(str(source.relative_to(ROOT)))
    return found


def test_the_readme_test_command_installs_every_program_the_suite_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^Run the tests.*?```sh\n\./test\.sh\n```", readme, re.MULTILINE | re.DOTALL)
    assert "scripts/install-system-packages.sh" in shell_lines(ROOT / "test.sh")
    script = (ROOT / "scripts" / "install-system-packages.sh").read_text()
    table = re.search(r'^COMMANDS="\n(.*?)^"', script, re.MULTILINE | re.DOTALL).group(1)
    installed = {line.split()[0] for line in table.splitlines() if line.strip()}
    # What test.sh's own steps run: scripts/ensure-services.sh starts PostgreSQL and Redis with these.
    assert {"pg_ctlcluster", "pg_isready", "redis-server", "redis-cli"} <= installed
    used = programs_the_suite_runs()
    assert {"chromium", "caddy", "turnserver", "sox"} <= set(used)  # the scan finds them
    missing = {name: sorted(files) for name, files in used.items() if name not in installed | {"sh"}}
    assert missing == {}, "run by the tests but not installed by ./test.sh (scripts/install-system-packages.sh)"


def test_ci_runs_the_readme_test_command_and_installs_nothing_itself() -> None:
    lines = shell_lines(ROOT / ".ci" / "run")
    assert lines[-1] == "./test.sh"
    assert not any("apt-get" in line for line in lines)
