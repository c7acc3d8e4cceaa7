from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from apps.core.admin import SecretAdminMixin

from . import services
from .models import ApiKey, Scope


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "active", "expires_at", "rate_limit_per_minute"]

    def clean_scopes(self) -> list[str]:
        try:
            return services.validate_scopes(self.cleaned_data["scopes"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("expired", "Expired"), ("expiring", "Expires later"), ("never", "Never expires")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        match self.value():
            case "expired":
                return queryset.filter(expires_at__lte=now)
            case "expiring":
                return queryset.filter(expires_at__gt=now)
            case "never":
                return queryset.filter(expires_at__isnull=True)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(SecretAdminMixin):
    form = ApiKeyForm
    list_display = ["name", "key_id", "scope_list", "active", "expires_at", "rate_limit_per_minute", "last_used_at"]
    list_filter = ["active", ExpiryFilter, "created_at", "last_used_at"]
    search_fields = ["name", "key_id"]
    readonly_fields = ["key_id", "created_at", "last_used_at", "secret_rotated_at", "revoked_at"]
    actions = ["revoke_selected"]
    change_form_template = "admin/apikeys/apikey/change_form.html"
    rotated_title = "API key secret rotated"

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def assign_identity(self, obj: ApiKey) -> str:
        obj.key_id = services.generate_key_id()
        return services.assign_new_secret(obj)

    def rotate_secret(self, obj: ApiKey) -> str:
        return services.rotate_secret(obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if change and "active" in form.changed_data:
            obj.revoked_at = None if obj.active else timezone.now()
        super().save_model(request, obj, form, change)

    def secret_details(self, obj: ApiKey) -> dict[str, Any]:
        return {
            "id_label": "Key ID (X-Api-Key)",
            "id_value": obj.key_id,
            "details_before": [("Name", obj.name)],
            "details_after": [("Scopes", ", ".join(obj.scopes))],
        }

    def get_urls(self) -> list:
        revoke = self.admin_site.admin_view(never_cache(self.revoke_view))
        return [path("<int:pk>/revoke/", revoke, name="apikeys_apikey_revoke"), *super().get_urls()]

    def revoke_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = self.object_for_change(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(self.change_url(key))
        services.revoke(key)
        self.log_change(request, key, "Revoked.")
        self.message_user(request, f"Revoked {key}. Requests signed with it are now refused.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:apikeys_apikey_changelist"))

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for key in queryset.filter(active=True):
            services.revoke(key)
            self.log_change(request, key, "Revoked.")
            count += 1
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
