from django.urls import path

from . import views

urlpatterns = [
    path("webhooks", views.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/<str:webhook_id>", views.WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<str:webhook_id>/rotate-secret", views.WebhookRotateSecretView.as_view(), name="webhook-rotate"),
    path("webhooks/<str:webhook_id>/test", views.WebhookTestView.as_view(), name="webhook-test"),
    path("webhooks/<str:webhook_id>/deliveries", views.WebhookDeliveriesView.as_view(), name="webhook-deliveries"),
]
