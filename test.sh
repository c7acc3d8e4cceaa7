#!/usr/bin/env bash
# Install the test tools and the system programs the tests run (apt, when missing), start PostgreSQL and Redis
# if they are not running, lint, and run the tests.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-system-packages.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
scripts/ensure-services.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Import boundaries (pyproject.toml [tool.importlinter]): agent, apps, speech and apps.core stay apart.
.venv/bin/lint-imports --no-cache --no-logo
exec .venv/bin/python -m pytest "$@"
