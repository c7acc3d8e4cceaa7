"""`python -m agent simulate ...` runs the offline simulation; anything else goes to the LiveKit worker's CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["simulate"]:
        from .simulate import main as simulate

        sys.exit(simulate(args[1:]))
    from .worker import main as worker  # imported lazily: it pulls in livekit-agents

    worker(args)


if __name__ == "__main__":
    main()
