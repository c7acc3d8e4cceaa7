"""Token-endpoint memory soak: does a web worker's RSS level off under a long steady load?

Starts the WSGI app under granian as production runs it (`--workers 2 --blocking-threads 1`, DEBUG=0,
PostgreSQL, Redis), drives signed `POST /v1/token` at a constant moderate rate with wrk (the token
bench's replay-free pre-signed requests, paced by paced.lua) in segments of `--interval` seconds, samples
each worker's RSS after every segment, and prints a table and a verdict: did a worker's RSS high-water
mark rise over the last half of the run? See README.md in this directory.

    bench/token_soak/soak.py                                  # 30 minutes at 400 req/s
    bench/token_soak/soak.py --duration 300 --rate 300        # a smoke test (still warming up: GROWING)
"""

import argparse
import base64
import contextlib
import csv
import http.client
import json
import math
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PRESIGN = ROOT / "bench" / "token_bench" / "presign.py"
HOST = "127.0.0.1"  # loopback only
MAX_DURATION_S = 4 * 3600
MAX_RATE = 2000
RESULT_LINE = re.compile(r"^RESULT (.*)$", re.MULTILINE)
RESULT_KEYS = ("rps", "requests", "p99_ms", "non2xx3xx", "connect", "read", "write", "timeout")


@dataclass
class Sample:
    elapsed_s: float
    requests: int
    rps: float
    p99_ms: float
    errors: int
    rss_mb: dict[int, float]


@dataclass
class Run:
    args: argparse.Namespace
    out: Path
    workers: list[int] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    worker_changes: list[str] = field(default_factory=list)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=1800, help="seconds of load (default 1800)")
    p.add_argument("--rate", type=int, default=400, help="target requests per second (default 400)")
    p.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    p.add_argument("--interval", type=int, default=30, help="seconds between RSS samples (default 30)")
    p.add_argument("--workers", type=int, default=2, help="granian --workers (default 2)")
    p.add_argument("--port", type=int, default=18775)
    p.add_argument(
        "--tolerance-mb",
        type=float,
        default=1.0,
        help="largest rise of a worker's RSS high-water mark over the last half that counts as flat (default 1.0)",
    )
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/rtcstack_soak")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    p.add_argument("--out", type=Path, default=None, help="results directory (default results/<timestamp>)")
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="interpreter that runs the app")
    p.add_argument("--analyse", type=Path, default=None, help="only print the verdict of a finished run's results")
    args = p.parse_args()
    if not 0 < args.duration <= MAX_DURATION_S:
        p.error(f"--duration must be within 1..{MAX_DURATION_S} s")
    if not 0 < args.rate <= MAX_RATE:
        p.error(f"--rate must be within 1..{MAX_RATE} req/s")
    if args.interval * 6 > args.duration:
        p.error("--duration must be at least six intervals (the verdict fits the last half's samples)")
    if not 0 < args.connections <= args.rate:
        p.error("--connections must be within 1..rate")
    return args


def production_env(args: argparse.Namespace) -> dict[str, str]:
    """The settings bench/token_bench/run.sh uses: production-like, nothing read from a .env."""
    env = {k: v for k, v in os.environ.items() if k not in ("LIVEKIT_URL", "WHISPER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="rtcstack_site.settings",
        DEBUG="0",
        SECRET_KEY="soak-" + secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        LIVEKIT_API_KEY="APIsoak",
        LIVEKIT_API_SECRET=secrets.token_urlsafe(32),
        LIVEKIT_PUBLIC_URL="wss://livekit.example",
        SECURE_SSL_REDIRECT="0",
        API_KEY_ENCRYPTION_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),  # a Fernet key
        LOG_LEVEL="WARNING",
    )
    return env


def prepare_database(args: argparse.Namespace, env: dict[str, str]) -> tuple[str, str]:
    """Create and migrate the database if needed; a fresh API key (scope token, no rate limit)."""
    url = urlsplit(args.database_url)
    conn = ["-h", url.hostname or HOST, "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    name = url.path.lstrip("/")
    createdb = subprocess.run(["createdb", *conn, name], capture_output=True, text=True, check=False)
    if createdb.returncode != 0 and "already exists" not in createdb.stderr:
        sys.exit(f"createdb {name} failed: {createdb.stderr}")
    manage = [args.python, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    created = subprocess.run(
        [*manage, "createapikey", "--name", f"soak-{int(time.time())}", "--scopes", "token", "--rate-limit", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    key = json.loads(created.splitlines()[-1])
    return key["keyId"], key["secret"]


def start_server(args: argparse.Namespace, env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [
        args.python, "-m", "granian", "--interface", "wsgi", "--host", HOST, "--port", str(args.port),
        "--workers", str(args.workers), "--blocking-threads", "1", "--log-level", "warning",
        "rtcstack_site.wsgi:application",
    ]  # fmt: skip
    print("== starting:", " ".join(command), flush=True)
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://{HOST}:{args.port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"granian exited during start-up:\n{log.read_text()}")
        if healthy(args.port) and len(worker_pids(server.pid)) == args.workers:
            return server
        time.sleep(0.5)
    stop_server(server)
    sys.exit(f"GET {base}/v1/health did not answer 200 within 60 s")


def healthy(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", "/v1/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            for pid in worker_pids(server.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            server.kill()
            server.wait()


def worker_pids(parent: int) -> list[int]:
    """granian's worker processes: the children of its main process."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                children.append(int(stat.parent.name))
    return sorted(children)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def run_segment(run: Run, base: str, key: str, secret: str, reqs: Path, delay_ms: float) -> dict[str, float]:
    """One paced wrk run over a freshly pre-signed set (timestamps must be within the 300 s window)."""
    args = run.args
    delay = max(1, round(delay_ms))  # wrk's delay() is in whole milliseconds
    # Enough that no connection can run out even with no latency at all: wrk would re-send (a replay, 401).
    n = math.ceil(args.connections * 1000 / delay * args.interval * 1.2) + 1000
    prefix = f"soak-{int(time.time())}-{secrets.token_hex(3)}-"
    subprocess.run(
        [sys.executable, str(PRESIGN), "--base-url", base, "--key", key, "--secret", secret,
         "-n", str(n), "--prefix", prefix, "-o", str(reqs)],
        check=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    done = subprocess.run(
        ["wrk", "-t1", f"-c{args.connections}", f"-d{args.interval}s", "--latency",
         "-s", str(HERE / "paced.lua"), base, "--", str(reqs), "1"],
        env={**os.environ, "SOAK_DELAY_MS": str(delay)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    with (run.out / "wrk.log").open("a") as log:
        log.write(done.stdout + done.stderr)
    match = RESULT_LINE.search(done.stdout)
    if done.returncode != 0 or match is None or "replay-free: yes" not in done.stdout:
        sys.exit(f"wrk failed or was not replay-free:\n{done.stdout}\n{done.stderr}")
    return {k: float(v) for k, v in (pair.split("=") for pair in match.group(1).split())}


def sample(run: Run, server: subprocess.Popen, started: float, result: dict[str, float]) -> Sample:
    pids = worker_pids(server.pid)
    if pids != run.workers:
        run.worker_changes.append(f"{time.monotonic() - started:.0f}s: workers {run.workers} -> {pids}")
        run.workers = pids
    errors = sum(int(result[k]) for k in ("non2xx3xx", "connect", "read", "write", "timeout"))
    previous = run.samples[-1].requests if run.samples else 0
    return Sample(
        elapsed_s=time.monotonic() - started,
        requests=previous + int(result["requests"]),
        rps=result["rps"],
        p99_ms=result["p99_ms"],
        errors=errors,
        rss_mb={pid: rss_mb(pid) for pid in pids},
    )


def nominal_delay(args: argparse.Namespace) -> float:
    return 1000 * args.connections / args.rate


def next_delay(run: Run, delay_ms: float, rps: float) -> float:
    """Hold the target rate: a connection's cycle is delay + latency; keep the latency, fix the delay.

    Damped and bounded (a quarter of the nominal delay at least), so one slow segment on a busy machine
    does not make the next one a burst.
    """
    nominal = nominal_delay(run.args)
    if rps <= 0:
        return delay_ms
    latency_ms = max(0.0, 1000 * run.args.connections / rps - delay_ms)
    wanted = max(nominal / 4, nominal - latency_ms)
    return (delay_ms + wanted) / 2


def print_row(sample_: Sample, workers: list[int]) -> None:
    rss = "  ".join(f"{sample_.rss_mb.get(pid, math.nan):8.1f}" for pid in workers)
    print(
        f"{sample_.elapsed_s:7.0f} {sample_.requests:10d} {sample_.rps:7.0f} {sample_.p99_ms:7.2f} "
        f"{sample_.errors:6d}  {rss}",
        flush=True,
    )


def verdict(samples: list[Sample], workers: list[int], tolerance_mb: float) -> bool:
    """Flat when no worker's RSS high-water mark rose by more than `tolerance_mb` over the last half.

    CPython frees a request's reference cycles (DRF's view, request and response point at each other) in
    its full collections, which run only when the old generation has grown by a quarter, so a healthy
    worker's RSS saw-tooths around a plateau. A leak lifts the peaks too: the highest RSS of the whole run
    then exceeds the highest of its first half. The least-squares slope over the last half is printed too.
    """
    half = samples[-1].elapsed_s / 2
    flat = True
    print("\nworker  RSS start  max 1st half  max overall  RSS end  high-water growth  last-half fit per 100k req")
    for pid in workers:
        points = [(s.elapsed_s, s.requests, s.rss_mb[pid]) for s in samples if pid in s.rss_mb]
        rss = [r for _, _, r in points]
        first_half = max(r for t, _, r in points if t < half)
        growth = max(rss) - first_half
        tail = [(c, r) for t, c, r in points if t >= half]
        per_request = statistics.linear_regression(*zip(*tail, strict=True)).slope
        flat &= growth <= tolerance_mb
        print(
            f"{pid:6d}  {rss[0]:9.1f}  {first_half:12.1f}  {max(rss):11.1f}  {rss[-1]:7.1f}  "
            f"{growth:+14.1f} MB  {per_request * 100_000:+22.2f} MB"
        )
    return flat


def write_csv(run: Run) -> None:
    with (run.out / "samples.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["elapsed_s", "requests", "rps", "p99_ms", "errors", *(f"rss_mb_{p}" for p in run.workers)])
        for s in run.samples:
            writer.writerow(
                [f"{s.elapsed_s:.1f}", s.requests, f"{s.rps:.1f}", s.p99_ms, s.errors]
                + [f"{s.rss_mb.get(p, math.nan):.2f}" for p in run.workers]
            )


def read_csv(path: Path) -> tuple[list[Sample], list[int]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    workers = [int(name.removeprefix("rss_mb_")) for name in rows[0] if name.startswith("rss_mb_")]
    samples = [
        Sample(
            elapsed_s=float(row["elapsed_s"]),
            requests=int(row["requests"]),
            rps=float(row["rps"]),
            p99_ms=float(row["p99_ms"]),
            errors=int(row["errors"]),
            rss_mb={pid: float(row[f"rss_mb_{pid}"]) for pid in workers if row[f"rss_mb_{pid}"] != "nan"},
        )
        for row in rows
    ]
    return samples, workers


def report(samples: list[Sample], workers: list[int], tolerance_mb: float, out: Path, changes: list[str]) -> int:
    flat = verdict(samples, workers, tolerance_mb)
    errors = sum(s.errors for s in samples)
    for change in changes:
        print("NOTE: a worker was replaced at", change)
    print(f"\nerrors (non-2xx or socket): {errors}; results in {out}")
    print(
        "VERDICT:",
        f"flat (no worker's RSS high-water mark rose more than {tolerance_mb} MB over the last half)"
        if flat
        else f"GROWING (a worker's RSS high-water mark rose more than {tolerance_mb} MB over the last half)",
    )
    return 0 if flat and not errors and not changes else 2


def main() -> int:
    args = parse_args()
    if args.analyse:
        return report(*read_csv(args.analyse / "samples.csv"), args.tolerance_mb, args.analyse, [])
    for tool in ("wrk", "createdb"):
        if shutil.which(tool) is None:
            sys.exit(f"missing tool: {tool} (Debian packages wrk, postgresql-client)")
    out = args.out or HERE / "results" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    run = Run(args=args, out=out)
    env = production_env(args)
    key, secret = prepare_database(args, env)
    server = start_server(args, env, out / "server.log")
    base = f"http://{HOST}:{args.port}"
    try:
        run.workers = worker_pids(server.pid)
        (out / "meta.txt").write_text(
            f"date: {datetime.now(UTC).isoformat()}\nhost: {os.cpu_count()} CPU(s)\n"
            f"load: rate={args.rate} connections={args.connections} duration={args.duration} "
            f"interval={args.interval}\nserver: granian --workers {args.workers} --blocking-threads 1, "
            f"pid {server.pid}, workers {run.workers}\ndatabase: {args.database_url}, redis: {args.redis_url}\n"
        )
        print(f"== {args.rate} req/s for {args.duration} s, {args.connections} connections; workers {run.workers}")
        print(f"{'t s':>7} {'requests':>10} {'req/s':>7} {'p99 ms':>7} {'errors':>6}  RSS MB per worker")
        started = time.monotonic()
        run.samples.append(sample(run, server, started, dict.fromkeys(RESULT_KEYS, 0.0)))
        print_row(run.samples[-1], run.workers)
        delay_ms = nominal_delay(args)
        with tempfile.TemporaryDirectory(prefix="rtcstack-soak-") as tmp:
            while time.monotonic() - started < args.duration:
                result = run_segment(run, base, key, secret, Path(tmp) / "reqs.bin", delay_ms)
                run.samples.append(sample(run, server, started, result))
                print_row(run.samples[-1], run.workers)
                delay_ms = next_delay(run, delay_ms, result["rps"])
    finally:
        stop_server(server)
    write_csv(run)
    return report(run.samples, run.workers, args.tolerance_mb, out, run.worker_changes)


if __name__ == "__main__":
    sys.exit(main())
