#!/usr/bin/env bash
# Live captions on the real path: a speaker publishing espeak-ng speech over WebRTC into the LiveKit stand-in
# (python -m tests.sfu), the agent as in production (python -m agent start), a listener receiving the captions.
# See README.md in this directory. The first argument is the mode; the rest go to live_call.py (--help).
#
#   bench/live_call/run.sh latency                      # 3 live runs of one room, then simulate --realtime once
#   bench/live_call/run.sh capacity                     # N = 1, 2, 4, 6, 8, 10, 12 rooms, stops at the first failing N
#   bench/live_call/run.sh capacity --rooms 6,8 --keep-going
#
# Needs Redis on loopback (default redis://127.0.0.1:6379/5, or REDIS_URL; only the rooms' rtcstack:live:* keys are
# written and deleted). The agent's tunables (PAUSE_THRESHOLD_SECONDS, WHISPER_*...) come from the environment.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}

[ -x "$PY" ] || { echo "run.sh: no Python at $PY (create the venv, or set PYTHON)" >&2; exit 1; }
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: missing $tool (Debian package $tool)" >&2; exit 1; }
done

OUT=$HERE/results/$(date +%Y%m%d-%H%M%S)-${1:-latency}
mkdir -p "$OUT"
cd "$ROOT"
set +e
"$PY" "$HERE/live_call.py" "$@" --out "$OUT" 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
set -e
echo "results: $OUT (summary.md, results.json, run.log, agent.log, standin.log)"
exit "$status"
