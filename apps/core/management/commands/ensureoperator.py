import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the operator (superuser) account if no superuser exists yet: RTCSTACK_ADMIN_USERNAME, "
        "RTCSTACK_ADMIN_EMAIL and RTCSTACK_ADMIN_PASSWORD, or a generated password printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        password = os.environ.get("RTCSTACK_ADMIN_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(15)
        users.objects.create_superuser(
            username=settings.RTCSTACK_ADMIN_USERNAME, email=settings.RTCSTACK_ADMIN_EMAIL, password=password
        )
        self.stdout.write(f"Created operator account '{settings.RTCSTACK_ADMIN_USERNAME}' for /admin/.")
        if generated:
            self.stdout.write(f"Its generated password, shown only this once: {password}")
