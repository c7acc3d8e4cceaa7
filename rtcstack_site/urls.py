from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from apps.recordings import views as recording_views

admin.site.site_header = "RTCstack administration"
admin.site.site_title = "RTCstack admin"
admin.site.site_url = "/"  # "View site": the start page below

urlpatterns = [
    # The start page: where the admin, the support dashboard and the API docs are.
    path("", TemplateView.as_view(template_name="index.html", extra_context={"site_header": admin.site.site_header})),
    path("admin/", admin.site.urls),
    path("dashboard/", include("apps.dashboard.urls")),
    path("recordings/download/<str:token>", recording_views.download, name="recording-download"),
    path("v1/", include("rtcstack_site.api_urls")),
]

handler400 = "apps.core.problems.bad_request"
handler403 = "apps.core.problems.permission_denied"
handler404 = "apps.core.problems.page_not_found"
handler500 = "apps.core.problems.server_error"
