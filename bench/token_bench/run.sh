#!/usr/bin/env bash
# Token-endpoint benchmark: signed POST /v1/token against the WSGI app under granian, with
# production-like settings, PostgreSQL and Redis, loaded by wrk through the shared harness
# (presign.py + signed.lua + run_token_bench.sh + summarize_wrk.py, copied here unchanged).
# See README.md in this directory for what it measures and every override.
#
#   bench/token_bench/run.sh                       # full run (warm-up + 3 x 15 s per config)
#   DURATION=5 REPS=1 N=200000 bench/token_bench/run.sh   # quick look
#   WORKERS=3 GRANIAN_EXTRA="--runtime-mode st" bench/token_bench/run.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}

# --- overridable knobs ---------------------------------------------------------------------------
HOST=127.0.0.1
PORT=${PORT:-18765}
WORKERS=${WORKERS:-2}
BLOCKING_THREADS=${BLOCKING_THREADS:-1}
RUNTIME_MODE=${RUNTIME_MODE:-}   # e.g. st | mt (granian --runtime-mode); empty = granian default
BACKPRESSURE=${BACKPRESSURE:-}   # granian --backpressure; empty = granian default
GRANIAN_EXTRA=${GRANIAN_EXTRA:-} # any further granian arguments, word-split
CONFIGS=${CONFIGS:-"1 16;2 64"}  # "threads connections;..." for wrk
DURATION=${DURATION:-15}         # seconds per measured run
REPS=${REPS:-3}                  # measured runs per config
WARMUP_S=${WARMUP_S:-5}          # discarded warm-up run per config
N=${N:-600000}                   # distinct pre-signed requests per run (must not run out: replay-free)
BODY_HASH=${BODY_HASH:-body}     # body = documented signature scheme (RTCstack verifies the body)
BENCH_DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/rtcstack_bench}
BENCH_REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/14}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
BASE="http://$HOST:$PORT"

die() { echo "run.sh: ERROR: $*" >&2; exit 1; }
log() { echo "== $*"; }

# --- tools -----------------------------------------------------------------------------------------
[ -x "$PY" ] || die "no Python at $PY (create the venv: ./run.sh at the repo root, or set PYTHON)"
if ! command -v wrk >/dev/null 2>&1; then
  log "wrk not found; installing the Debian package"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk
  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk; fi
  command -v wrk >/dev/null 2>&1 || die "could not install wrk"
fi
for tool in curl bc python3 pgrep psql createdb; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done
[ -x /usr/bin/time ] || die "missing /usr/bin/time (Debian package: time)"

# --- production-like settings (only what the bench sets; nothing is read from a .env) -------------
rand() { "$PY" -c "import secrets; print(secrets.token_urlsafe($1))"; }
export DJANGO_SETTINGS_MODULE=rtcstack_site.settings
export DEBUG=0
export SECRET_KEY="bench-$(rand 48)"
export ALLOWED_HOSTS=127.0.0.1,localhost
export DATABASE_URL=$BENCH_DATABASE_URL
export REDIS_URL=$BENCH_REDIS_URL
export LIVEKIT_API_KEY=APIbench
export LIVEKIT_API_SECRET="$(rand 32)"
export LIVEKIT_PUBLIC_URL=wss://livekit.example
export SECURE_SSL_REDIRECT=0 # plain HTTP on loopback, no TLS proxy
export API_KEY_ENCRYPTION_KEYS="$("$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
export LOG_LEVEL=WARNING # 401s and 5xx are logged at WARNING or above; none are expected
unset LIVEKIT_URL WHISPER_URL # keep /v1/health (readiness probe) from calling out

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SERVER_LOG="$OUT/server.log"
SPID=""
TMPD=$(mktemp -d /tmp/rtcstack-token-bench.XXXXXX)

cleanup() {
  local rc=$?
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
    log "stopping granian (pid $SPID)"
    kill -TERM "$SPID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$SPID" 2>/dev/null; then
      pkill -KILL -P "$SPID" 2>/dev/null || true
      kill -KILL "$SPID" 2>/dev/null || true
    fi
    wait "$SPID" 2>/dev/null || true
  fi
  rm -rf "$TMPD"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$ROOT"

# --- database, migrations, API key -----------------------------------------------------------------
read -r DB_HOST DB_PORT DB_USER DB_NAME < <("$PY" -c '
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres", u.path.lstrip("/"))
' "$DATABASE_URL")
if ! psql -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
  log "creating database $DB_NAME"
  createdb -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" "$DB_NAME"
fi
log "migrating $DB_NAME"
"$PY" manage.py migrate --noinput -v 0
KEY_JSON=$("$PY" manage.py createapikey --name "bench-$(date +%Y%m%d-%H%M%S)" --scopes token --rate-limit 0 | tail -n 1)
read -r KEY SECRET < <("$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["keyId"], d["secret"])' "$KEY_JSON") || true
[ -n "$KEY" ] && [ -n "$SECRET" ] || die "createapikey did not print {keyId, secret}: $KEY_JSON"
log "API key $KEY (scope token, no rate limit)"

# --- server ----------------------------------------------------------------------------------------
"$PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)' "$HOST" "$PORT" || die "port $PORT on $HOST is in use; set PORT=..."

GRANIAN_ARGS=(--interface wsgi --host "$HOST" --port "$PORT" --workers "$WORKERS"
  --blocking-threads "$BLOCKING_THREADS" --log-level warning)
[ -n "$RUNTIME_MODE" ] && GRANIAN_ARGS+=(--runtime-mode "$RUNTIME_MODE")
[ -n "$BACKPRESSURE" ] && GRANIAN_ARGS+=(--backpressure "$BACKPRESSURE")
# shellcheck disable=SC2206 # intentional word splitting of free-form extra arguments
[ -n "$GRANIAN_EXTRA" ] && GRANIAN_ARGS+=($GRANIAN_EXTRA)
GRANIAN_ARGS+=(rtcstack_site.wsgi:application)

log "starting: $PY -m granian ${GRANIAN_ARGS[*]}"
"$PY" -m granian "${GRANIAN_ARGS[@]}" >"$SERVER_LOG" 2>&1 &
SPID=$! # granian's main process; run_token_bench.sh sums the CPU of its whole process tree

for i in $(seq 1 120); do
  kill -0 "$SPID" 2>/dev/null || { cat "$SERVER_LOG" >&2; die "granian exited during start-up"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/health" || true)
  [ "$code" = 200 ] && break
  [ "$i" = 120 ] && { curl -s "$BASE/v1/health" >&2 || true; die "GET /v1/health did not answer 200 within 60 s (last: $code)"; }
  sleep 0.5
done
log "server up at $BASE (pid $SPID): $(curl -s "$BASE/v1/health")"

{
  echo "date: $(date -Is)"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) uncommitted path(s)"
  echo "host: $(nproc) CPU(s), $(uname -sr)"
  echo "python: $("$PY" -c 'import sys; print(sys.version.split()[0])'), django: $("$PY" -c 'import django; print(django.get_version())'), granian: $("$PY" -m granian --version 2>/dev/null | tail -n 1)"
  echo "wrk: $(wrk -v 2>&1 | head -n 1)"
  echo "server: $PY -m granian ${GRANIAN_ARGS[*]}"
  echo "load: CONFIGS='$CONFIGS' DURATION=$DURATION REPS=$REPS WARMUP_S=$WARMUP_S N=$N BODY_HASH=$BODY_HASH"
  echo "database: $DATABASE_URL, redis: $REDIS_URL"
} >"$OUT/meta.txt"

# --- sanity: one signed request is accepted once, and its replay is refused ------------------------
python3 "$HERE/presign.py" --base-url "$BASE" --key "$KEY" --secret "$SECRET" -n 1 \
  --prefix "sanity-$(date +%s)-" --body-hash "$BODY_HASH" --curl 1 -o /dev/null 2>"$TMPD/curl.txt"
CURL_CMD=$(grep '^curl ' "$TMPD/curl.txt" | head -n 1)
[ -n "$CURL_CMD" ] || die "presign.py --curl 1 printed no curl command: $(cat "$TMPD/curl.txt")"
FIRST=$(bash -c "$CURL_CMD")
SECOND=$(bash -c "$CURL_CMD")
printf 'first send:\n%s\n\nsecond (identical) send:\n%s\n' "$FIRST" "$SECOND" >"$OUT/sanity.txt"
echo "$FIRST" | grep -q '^HTTP 200$' || die "a freshly signed POST /v1/token was not accepted (want 200):
$FIRST"
echo "$SECOND" | grep -q '^HTTP 401$' || die "replaying the same signed request was not refused (want 401):
$SECOND"
log "sanity: fresh signed request -> 200, identical replay -> 401"

# --- load ------------------------------------------------------------------------------------------
log "load: CONFIGS='$CONFIGS' DURATION=${DURATION}s REPS=$REPS N=$N -> $OUT"
LOG_LINES_BEFORE=$(wc -l <"$SERVER_LOG")
CONFIGS=$CONFIGS WARMUP_S=$WARMUP_S REQS_FILE="$TMPD/presigned.bin" \
  "$HERE/run_token_bench.sh" "$OUT" "$BASE" "$KEY" "$SECRET" "$SPID" "$BODY_HASH" "$N" "$REPS" "$DURATION" \
  | tee "$OUT/run.log"
python3 "$HERE/summarize_wrk.py" "$OUT" >"$OUT/summary.md"

# --- verdict ---------------------------------------------------------------------------------------
status=0
for f in "$OUT"/t*c*-r*.txt; do
  case $f in *.presign.txt) continue ;; esac
  if ! grep -q 'replay-free: yes' "$f"; then
    echo "WARNING: $(basename "$f") is not replay-free (a wrk thread ran out of pre-signed requests and" \
      "re-sent some, which the server refuses with 401): raise N (now $N)." >&2
    status=2
  fi
  if ! grep -q '^RESULT .* non2xx3xx=0 connect=0 read=0 write=0 timeout=0$' "$f"; then
    echo "WARNING: $(basename "$f") had non-2xx responses or socket errors: $(grep '^RESULT' "$f" || echo 'no RESULT')" >&2
    status=2
  fi
done
NEW_LOG=$(tail -n +"$((LOG_LINES_BEFORE + 1))" "$SERVER_LOG")
if [ -n "$NEW_LOG" ]; then
  echo "NOTE: the server logged during the load ($SERVER_LOG); first lines:" >&2
  echo "$NEW_LOG" | head -n 10 >&2
fi
echo
echo "results: $OUT (summary.md, run.log, per-run wrk output, server.log, meta.txt)"
exit "$status"
