"""Container healthcheck: exit 0 when URL answers 2xx within the timeout, else 1.

    python /app/docker/healthcheck.py http://127.0.0.1:8000/v1/health

Standard library only, so it works in every image built from docker/Dockerfile without curl.
"""

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].startswith("http://127.0.0.1:"):
        print("usage: healthcheck.py http://127.0.0.1:PORT/PATH", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(argv[1], timeout=5) as response:  # noqa: S310 - loopback http only
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
