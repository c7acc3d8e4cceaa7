import json
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError
from django.utils.dateparse import parse_datetime

from apps.apikeys import services
from apps.apikeys.models import Scope

READ_FROM_STDIN = "-"


class Command(BaseCommand):
    help = (
        'Create an API key and print {"keyId", "secret"} as JSON (the only time the secret is shown). '
        "--key-id with --secret imports existing credentials; --secret - reads the secret from stdin."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes",
            nargs="+",
            default=[Scope.ALL.value],
            choices=Scope.values,
            metavar="SCOPE",
            help=f"one or more of: {', '.join(Scope.values)} (default: all)",
        )
        parser.add_argument("--key-id", help="import: the existing key ID")
        parser.add_argument("--secret", help="import: the existing secret, or - to read it from stdin")
        parser.add_argument("--expires-at", help="ISO 8601 date-time after which the key stops working")
        parser.add_argument("--rate-limit", type=int, help="requests per minute; 0 for no limit")

    def handle(self, *args: Any, **options: Any) -> None:
        secret = options["secret"]
        if secret == READ_FROM_STDIN:
            secret = sys.stdin.readline().strip()
        expires_at = None
        if options["expires_at"]:
            expires_at = parse_datetime(options["expires_at"])
            if expires_at is None:
                raise CommandError("--expires-at must be an ISO 8601 date-time, e.g. 2027-01-31T00:00:00Z")
        if options["rate_limit"] is not None and options["rate_limit"] < 0:
            raise CommandError("--rate-limit must be 0 (no limit) or more")
        try:
            key, plain = services.create_api_key(
                options["name"],
                options["scopes"],
                key_id=options["key_id"],
                secret=secret,
                expires_at=expires_at,
                rate_limit_per_minute=options["rate_limit"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except IntegrityError as exc:
            raise CommandError(f"A key with ID {options['key_id']!r} already exists.") from exc
        self.stdout.write(json.dumps({"keyId": key.key_id, "secret": plain}))
