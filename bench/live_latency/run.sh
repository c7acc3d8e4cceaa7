#!/usr/bin/env bash
# Live transcription latency: `python -m agent simulate --realtime` on a 10-utterance espeak-ng file, 3 runs.
# See README.md in this directory. Extra arguments go to run.py (e.g. --runs 1); the agent's tunables
# (PAUSE_THRESHOLD_SECONDS, SHORT_PAUSE_SECONDS, WHISPER_BEAM_SIZE, WHISPER_URL...) come from the environment,
# as they do for the agent; by default Whisper runs in-process with the bundled tiny.en.
#
#   bench/live_latency/run.sh
#   PAUSE_THRESHOLD_SECONDS=1.5 bench/live_latency/run.sh --runs 1
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}

[ -x "$PY" ] || { echo "run.sh: no Python at $PY (create the venv, or set PYTHON)" >&2; exit 1; }
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: missing $tool (Debian package $tool)" >&2; exit 1; }
done

cd "$ROOT"
exec "$PY" "$HERE/run.py" "$@"
