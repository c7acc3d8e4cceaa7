#!/usr/bin/env bash
# Install everything into .venv and run the platform (API + admin + worker).
# With no DATABASE_URL / REDIS_URL set it runs on SQLite with in-process fallbacks.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
# Development settings, generated once and read by every manage.py command (rtcstack_site/settings.py), so
# `manage.py createapikey` works and encrypts with the key the server decrypts with. The environment wins.
dev_env="${RTCSTACK_VAR_DIR:-var}/dev.env"
if [ ! -f "$dev_env" ]; then
  mkdir -p "$(dirname "$dev_env")"
  (umask 077 && printf 'DEBUG=1\nSECRET_KEY=%s\n' "$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')" >"$dev_env")
  echo "Wrote development settings (DEBUG=1, a new SECRET_KEY) to $dev_env"
fi
exec .venv/bin/python manage.py serve "$@"
