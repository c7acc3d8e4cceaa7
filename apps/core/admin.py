"""Admin pieces shared by the apps that hand out secrets (API keys, webhook endpoints)."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import capfirst
from django.views.decorators.cache import never_cache

from .crypto import decrypt_secret, encrypt_secret

PENDING_SECRET_SESSION_KEY = "rtcstack:secret-shown-once"  # noqa: S105 - a session key name, not a secret


class ObjectActionAdmin(admin.ModelAdmin):
    """Extra per-object admin views (rotate, revoke, test…) check the change permission the same way."""

    def object_for_change(self, request: HttpRequest, pk: int) -> Any:
        obj = get_object_or_404(self.model, pk=pk)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def change_url(self, obj: Model) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])


class SecretAdminMixin(ObjectActionAdmin):
    """The secret lifecycle in the admin: a new object gets its secret on save, a rotate page replaces it.

    A secret is shown on one page, once, right after it is made; the page is never cached (never_cache).
    The form's POST redirects to that page (POST/redirect/GET), so reloading it never creates or rotates again:
    the secret waits in the session, encrypted, and the first GET takes it out. Subclasses say what differs:
    how a new object gets its ID and secret, how a secret is rotated, and what the pages show.
    """

    secret_label = "Secret"  # noqa: S105 - how the pages name the secret, not a secret
    rotated_title: str  # the title of the page that shows a rotated secret

    def secret_details(self, obj: Model) -> dict[str, Any]:
        """The page's id_label, id_value, and optionally details_before and details_after."""
        raise NotImplementedError

    def assign_identity(self, obj: Model) -> str:
        """Give a new, unsaved object its public ID and first secret; returns the plain secret."""
        raise NotImplementedError

    def rotate_secret(self, obj: Model) -> str:
        """Replace a saved object's secret; returns the plain secret."""
        raise NotImplementedError

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return self.readonly_fields if obj else []

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        if not change:
            request.new_secret = self.assign_identity(obj)
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: Model, post_url_continue: str | None = None) -> HttpResponse:
        return self.show_secret_once(request, obj, request.new_secret, f"{capfirst(self.opts.verbose_name)} created")

    def get_urls(self) -> list:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/rotate/", wrap(never_cache(self.rotate_view)), name=f"{prefix}_rotate"),
            path("<int:pk>/secret/", wrap(never_cache(self.secret_view)), name=f"{prefix}_secret"),
            *super().get_urls(),
        ]

    def rotate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self.object_for_change(request, pk)
        label = self.secret_label.lower()
        if request.method == "POST":
            secret = self.rotate_secret(obj)
            self.log_change(request, obj, f"Rotated the {label}.")
            return self.show_secret_once(request, obj, secret, self.rotated_title)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Rotate {label}",
            "opts": self.opts,
            "original": obj,
        }
        template = f"admin/{self.opts.app_label}/{self.opts.model_name}/rotate_confirm.html"
        return TemplateResponse(request, template, context)

    def show_secret_once(self, request: HttpRequest, obj: Model, secret: str, title: str) -> HttpResponseRedirect:
        request.session[PENDING_SECRET_SESSION_KEY] = {
            "model": self.opts.label,
            "pk": obj.pk,
            "title": title,
            "secret": encrypt_secret(secret),
        }
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_secret"
        return HttpResponseRedirect(reverse(name, args=[obj.pk]))

    def secret_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self.object_for_change(request, pk)
        pending = request.session.get(PENDING_SECRET_SESSION_KEY)
        if not pending or pending["model"] != self.opts.label or pending["pk"] != obj.pk:
            self.message_user(
                request,
                "That secret was shown once and is not stored in readable form; rotate it to get a new one.",
                messages.WARNING,
            )
            return HttpResponseRedirect(self.change_url(obj))
        del request.session[PENDING_SECRET_SESSION_KEY]
        details = self.secret_details(obj)
        context = {
            **self.admin_site.each_context(request),
            "title": pending["title"],
            "opts": self.opts,
            "original": obj,
            "details_before": details.get("details_before", []),
            "id_label": details["id_label"],
            "id_value": details["id_value"],
            "secret_label": self.secret_label,
            "secret": decrypt_secret(pending["secret"]),
            "details_after": details.get("details_after", []),
            "back_url": self.change_url(obj),
            "back_label": f"I have stored the secret — back to the {self.opts.verbose_name}",
        }
        return TemplateResponse(request, "admin/secret_shown_once.html", context)
