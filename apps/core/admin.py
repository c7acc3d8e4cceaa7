"""Admin pieces shared by the apps that hand out secrets (API keys, webhook endpoints)."""

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse


class SecretAdminMixin(admin.ModelAdmin):
    """A secret is shown on one page, once, right after it is made; the page is never cached."""

    def object_for_change(self, request: HttpRequest, pk: int) -> Any:
        obj = get_object_or_404(self.model, pk=pk)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def secret_page(
        self,
        request: HttpRequest,
        obj: Model,
        secret: str,
        *,
        title: str,
        id_label: str,
        id_value: str,
        caption: str = "Secret",
        details_before: list[tuple[str, str]] = (),
        details_after: list[tuple[str, str]] = (),
    ) -> HttpResponse:
        opts = self.opts
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": opts,
            "original": obj,
            "details_before": details_before,
            "id_label": id_label,
            "id_value": id_value,
            "secret_label": caption,
            "secret": secret,
            "details_after": details_after,
            "back_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]),
            "back_label": f"I have stored the secret — back to the {opts.verbose_name}",
        }
        response = TemplateResponse(request, "admin/secret_shown_once.html", context)
        response["Cache-Control"] = "no-store"
        return response
