from django.contrib import admin
from django.urls import include, re_path
from django_db_logger.admin import StatusLogAdmin
from django_db_logger.models import StatusLog


class PeerSearchAdmin(StatusLogAdmin):
    """The peer's admin as shipped has no search box; this is it with the obvious search added, so a
    text search can be compared at all. Only the benchmark's second admin site uses it."""

    search_fields = ("msg",)


peer_site = admin.AdminSite(name="peeradmin")
peer_site.register(StatusLog, PeerSearchAdmin)

urlpatterns = [
    re_path(r"^admin/", admin.site.urls),
    re_path(r"^peeradmin/", peer_site.urls),
    re_path(r"^applogs/", include("applogs.urls")),
]
