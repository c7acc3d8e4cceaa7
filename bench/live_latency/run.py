"""Live transcription latency and accuracy: `python -m agent simulate --realtime` on a known speech file.

Builds one file of espeak-ng utterances separated by 1-2 s pauses, so the true start and end of every
utterance are known to the sample; feeds it in real time through the live pipeline (a subprocess, exactly the
documented command); and reports per utterance how long after the speech started the `speaking` indicator was
published and how long after it ended the final `transcript` was, plus the WER of the live transcripts against
the WER of transcribing every utterance on its own with the same Whisper client. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from speech.client import WhisperClient  # noqa: E402
from tests.support.audio import SAMPLE_RATE, read_wav, speech, wer, write_wav  # noqa: E402

UTTERANCES = (
    "Good morning everyone.",
    "The meeting will start at ten o'clock tomorrow morning.",
    "Please send the quarterly report to the finance team before Friday.",
    "Yes, that works for me.",
    "We need to review the budget and hire two new engineers next month.",
    "Can everyone hear me clearly? Let's begin with the first item on the agenda.",
    "The weather today is sunny with a light breeze from the west.",
    "I think we should move the launch to the second week of March, after the security review is done.",
    "Thanks.",
    "Could you share your screen so that we can all look at the new design together?",
)
AUDIBLE = 1e-3  # a sample above -60 dBFS is speech: the clips are clean, so this finds their true edges


@dataclass
class Utterance:
    text: str
    onset_ms: float
    end_ms: float


def build(path: Path, seed: int) -> list[Utterance]:
    """The utterances with random 1-2 s pauses (1 s of silence before the first and after the last)."""
    rng = random.Random(seed)
    parts = [np.zeros(SAMPLE_RATE, dtype=np.float32)]
    position = SAMPLE_RATE
    truth = []
    for text in UTTERANCES:
        clip = read_wav(speech(text))
        audible = np.flatnonzero(np.abs(clip) > AUDIBLE)
        truth.append(
            Utterance(
                text, (position + audible[0]) * 1000 / SAMPLE_RATE, (position + audible[-1] + 1) * 1000 / SAMPLE_RATE
            )
        )
        pause = np.zeros(round(rng.uniform(1.0, 2.0) * SAMPLE_RATE), dtype=np.float32)
        parts += [clip, pause]
        position += len(clip) + len(pause)
    parts.append(np.zeros(SAMPLE_RATE, dtype=np.float32))
    write_wav(path, np.concatenate(parts))
    return truth


def simulate(path: Path) -> tuple[list[dict], float]:
    command = [sys.executable, "-m", "agent", "simulate", "--realtime", "--wav", str(path)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"simulate failed ({done.returncode}): {done.stderr}")
    if done.stderr.strip():
        print(done.stderr, file=sys.stderr)
    return [json.loads(line) for line in done.stdout.splitlines()], time.monotonic() - started


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_once(path: Path, truth: list[Utterance], baseline_wer: float) -> dict:
    messages, wall = simulate(path)
    rows = []
    for index, utterance in enumerate(truth):
        nxt = truth[index + 1].onset_ms if index + 1 < len(truth) else float("inf")

        def mine(message: dict, utterance: Utterance = utterance, nxt: float = nxt) -> bool:
            return utterance.onset_ms - 300 <= message["startMs"] < min(utterance.end_ms, nxt - 300)

        speaking = [m for m in messages if m["type"] == "speaking" and mine(m)]
        finals = [m for m in messages if m["type"] == "transcript" and mine(m)]
        rows.append(
            {
                "text": utterance.text,
                "onsetMs": round(utterance.onset_ms),
                "endMs": round(utterance.end_ms),
                "speakingDelayMs": speaking[0]["emittedMs"] - utterance.onset_ms if speaking else None,
                "transcriptDelayMs": finals[-1]["emittedMs"] - utterance.end_ms if finals else None,
                "transcripts": len(finals),
                "live": " ".join(m["text"] for m in finals),
            }
        )
    live_text = " ".join(m["text"] for m in messages if m["type"] == "transcript")
    speaking_delays = [r["speakingDelayMs"] for r in rows if r["speakingDelayMs"] is not None]
    final_delays = [r["transcriptDelayMs"] for r in rows if r["transcriptDelayMs"] is not None]
    return {
        "rows": rows,
        "wallSeconds": round(wall, 1),
        "speakingP50": percentile(speaking_delays, 50),
        "speakingP95": percentile(speaking_delays, 95),
        "transcriptP50": percentile(final_delays, 50),
        "transcriptP95": percentile(final_delays, 95),
        "liveWer": wer(" ".join(u.text for u in truth), live_text),
        "perUtteranceWer": baseline_wer,
        "missing": sum(1 for r in rows if r["transcripts"] == 0),
        "split": sum(1 for r in rows if r["transcripts"] > 1),
        "other": len([m for m in messages if m["type"] not in {"speaking", "speaking_stopped", "transcript"}]),
    }


def report(run: int, result: dict) -> str:
    lines = [
        f"### Run {run}",
        "",
        "| # | utterance | onset (ms) | end (ms) | speaking +ms | transcript +ms | live transcript |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, row in enumerate(result["rows"], start=1):

        def ms(value: float | None) -> str:
            return "—" if value is None else f"{value:.0f}"

        lines.append(
            f"| {number} | {row['text']} | {row['onsetMs']} | {row['endMs']} | {ms(row['speakingDelayMs'])} "
            f"| {ms(row['transcriptDelayMs'])} | {row['live'] or '—'} |"
        )
    lines += [
        "",
        f"speaking indicator: p50 {result['speakingP50']:.0f} ms, p95 {result['speakingP95']:.0f} ms; "
        f"final transcript: p50 {result['transcriptP50']:.0f} ms, p95 {result['transcriptP95']:.0f} ms after the "
        f"end of speech; WER live {result['liveWer']:.3f} vs per utterance {result['perUtteranceWer']:.3f}; "
        f"{result['missing']} utterance(s) without a transcript, {result['split']} split; "
        f"wall {result['wallSeconds']} s",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7, help="seed of the pause lengths")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "speech.wav"
    truth = build(path, args.seed)

    client = WhisperClient.from_env()  # the client the agent builds from the same environment
    client.transcribe(read_wav(speech(UTTERANCES[0])))  # warm-up, as the agent does
    alone = [client.transcribe(read_wav(speech(u.text))).text for u in truth]
    baseline = wer(" ".join(u.text for u in truth), " ".join(alone))

    tunables = (
        "PAUSE_THRESHOLD_SECONDS",
        "SHORT_PAUSE_SECONDS",
        "SPEECH_RMS_THRESHOLD",
        "WHISPER_MAX_CONCURRENT",
        "WHISPER_URL",
        "WHISPER_MODEL",
        "WHISPER_BEAM_SIZE",
        "WHISPER_CPU_THREADS",
    )
    settings = {name: os.environ[name] for name in tunables if name in os.environ}
    header = [
        "## Live latency",
        "",
        f"date {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPU(s) {cpu_model()}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"command: {sys.executable} -m agent simulate --realtime --wav {path}",
        f"settings: {settings or 'defaults'}; {len(truth)} utterances, seed {args.seed}; "
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"per utterance (alone): WER {baseline:.3f}: {' | '.join(alone)}",
        "",
    ]
    print("\n".join(header), flush=True)
    results = []
    for run in range(1, args.runs + 1):
        result = run_once(path, truth, baseline)
        results.append(result)
        print(report(run, result), flush=True)
    (args.out / "results.json").write_text(json.dumps({"settings": settings, "runs": results}, indent=2))
    (args.out / "summary.md").write_text("\n".join(header) + "\n".join(report(i, r) for i, r in enumerate(results, 1)))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
