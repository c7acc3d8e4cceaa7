#!/usr/bin/env bash
# Install everything into .venv and run the platform (API + admin + worker).
# With no DATABASE_URL / REDIS_URL set it runs on SQLite with in-process fallbacks.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
export DEBUG="${DEBUG:-1}"
exec .venv/bin/python manage.py serve "$@"
