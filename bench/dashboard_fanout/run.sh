#!/usr/bin/env bash
# Dashboard fan-out benchmark: delay from the live agent's Redis write (XADD of a final segment, PUBLISH of a
# speaking event) to its receipt by every dashboard WebSocket, through the real processes: uvicorn serving
# rtcstack_site.asgi (Channels, Redis channel layer) and `manage.py persistlive` (stream → PostgreSQL →
# Channels group; speaking relay). See README.md in this directory for the scenarios and the results.
#
#   bench/dashboard_fanout/run.sh                          # full run: scenarios a,b,c × 1 and 2 workers × 2 runs
#   bench/dashboard_fanout/run.sh --duration 10 --reps 1   # quick look
#   bench/dashboard_fanout/run.sh --scenarios b --workers 2 --tap             # + time to group_send (stages)
#   bench/dashboard_fanout/run.sh --scenarios b --workers 2 --interval 0.2,0.4 # headroom: 10x the segment rate
#
# Every option is fanout.py's (--help). Needs PostgreSQL and Redis on loopback (defaults: database
# rtcstack_bench_fanout, created and migrated if missing; Redis DB 8, of which only rtcstack:live:* and asgi*
# keys are touched). Run by hand, not from the test suite.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}

[ -x "$PY" ] || { echo "run.sh: no Python at $PY (create the venv: ./run.sh at the repo root, or set PYTHON)" >&2; exit 1; }

OUT=$HERE/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cd "$ROOT"
set +e
"$PY" "$HERE/fanout.py" --out "$OUT" "$@" 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
set -e
echo "results: $OUT (summary.md, results.jsonl, run.log, meta.json, uvicorn/persistlive logs)"
exit "$status"
