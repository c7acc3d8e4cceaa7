"""``python -m tests.sfu``: the LiveKit stand-in on one port, for an SDK, a browser or the agent to connect to.

Serves, as livekit-server does on one port and over one room state: ``/rtc`` (client signalling, real WebRTC on
127.0.0.1), ``/twirp/...`` (the server API) and ``/agent`` (agent workers), and posts webhooks to ``--webhook-url``.
"""

from __future__ import annotations

import argparse
import signal
import threading

from tests.sfu.livekit_server import LiveKitServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.sfu", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument("--webhook-url", default=None)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = LiveKitServer(args.api_key, args.api_secret, host=args.host, port=args.port, webhook_url=args.webhook_url)
    with server:
        print(f"LiveKit stand-in: {server.url} (signalling /rtc, server API /twirp, agents /agent)", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
