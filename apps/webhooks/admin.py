import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.cache import never_cache

from apps.core.admin import ObjectActionAdmin, SecretAdminMixin

from . import services, targets
from .models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    url = forms.CharField(
        label="URL", max_length=2000, help_text="http(s) URL; must resolve to a public address unless allowed."
    )
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            targets.check_url(url)
        except (targets.InvalidTargetError, targets.UnresolvableTargetError) as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url

    def clean_events(self) -> list[str]:
        try:
            return services.validate_events(self.cleaned_data["events"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


class SubscribedEventFilter(admin.SimpleListFilter):
    """Endpoints that receive an event (subscribed to it or to '*')."""

    title = "receives event"
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, label) for value, label in Event.choices if value != Event.ALL]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return services.subscribed(queryset, self.value()) if self.value() else queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SecretAdminMixin):
    form = WebhookEndpointForm
    list_display = ["url", "public_id", "event_list", "active", "description", "created_at"]
    list_filter = ["active", SubscribedEventFilter, "created_at"]
    search_fields = ["url", "description", "public_id"]
    readonly_fields = ["public_id", "created_at", "updated_at", "secret_rotated_at"]
    change_form_template = "admin/webhooks/webhookendpoint/change_form.html"
    secret_label = "Signing secret"  # noqa: S105 - a label, not a secret
    rotated_title = "Webhook signing secret rotated"

    @admin.display(description="events")
    def event_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events)

    def assign_identity(self, obj: WebhookEndpoint) -> str:
        obj.public_id = services.generate_endpoint_id()
        return services.assign_new_secret(obj)

    def rotate_secret(self, obj: WebhookEndpoint) -> str:
        return services.rotate_secret(obj)

    def secret_details(self, obj: WebhookEndpoint) -> dict[str, Any]:
        return {
            "id_label": "Endpoint ID",
            "id_value": obj.public_id,
            "details_before": [("URL", obj.url)],
            "details_after": [("Events", ", ".join(obj.events))],
        }

    def get_urls(self) -> list:
        test = self.admin_site.admin_view(never_cache(self.test_view))
        return [path("<int:pk>/test/", test, name="webhooks_webhookendpoint_test"), *super().get_urls()]

    def test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = self.object_for_change(request, pk)
        change_url = self.change_url(endpoint)
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        if not endpoint.active:
            self.message_user(request, "The endpoint is inactive; activate it first.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        delivery = services.send_test(endpoint)
        self.message_user(request, f"Queued test event {delivery.public_id}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["number", "started_at", "status_code", "duration_ms", "error", "response_excerpt"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ObjectActionAdmin):
    list_display = [
        "public_id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_response_code",
        "last_duration_ms",
        "created_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "event", "endpoint", "created_at"]
    search_fields = ["public_id", "endpoint__url", "endpoint__public_id"]
    list_select_related = ["endpoint"]
    fields = [
        "public_id",
        "endpoint",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "last_response_code",
        "last_duration_ms",
        "last_error",
        "created_at",
        "updated_at",
        "pretty_body",
    ]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["redeliver_selected"]
    change_form_template = "admin/webhooks/webhookdelivery/change_form.html"

    @admin.display(description="body")
    def pretty_body(self, obj: WebhookDelivery) -> str:
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.body
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """A read-only log page: no save buttons (the worker owns these rows)."""
        no_save = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **no_save})

    def save_model(self, request: HttpRequest, obj: WebhookDelivery, form: forms.ModelForm, change: bool) -> None:
        """Never write a delivery from a form: it would overwrite what a worker just recorded."""

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/redeliver/",
                wrap(never_cache(self.redeliver_view)),
                name="webhooks_webhookdelivery_redeliver",
            ),
            *super().get_urls(),
        ]

    def _redeliver(self, request: HttpRequest, delivery: WebhookDelivery) -> bool:
        try:
            services.redeliver(delivery)
        except services.DeliveryInProgressError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return False
        self.log_change(request, delivery, "Queued for redelivery.")
        return True

    def redeliver_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        delivery = self.object_for_change(request, pk)
        if request.method == "POST" and self._redeliver(request, delivery):
            self.message_user(request, f"Queued {delivery.public_id} for redelivery.", messages.SUCCESS)
        return HttpResponseRedirect(self.change_url(delivery))

    @admin.action(description="Redeliver selected deliveries", permissions=["change"])
    def redeliver_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = sum(self._redeliver(request, delivery) for delivery in queryset)
        self.message_user(request, f"Queued {count} deliver{'y' if count == 1 else 'ies'} again.", messages.SUCCESS)
