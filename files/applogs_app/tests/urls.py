import logging

from django.contrib import admin
from django.http import HttpResponse
# As the install document writes it (django.conf.urls.include exists in every version).
from django.conf.urls import include

from applogs.compat import re_path


def log_probe(request):
    """Logs one record on the api logger (the middleware tests request it)."""
    logging.getLogger("api").info("probe")
    return HttpResponse("ok")


urlpatterns = [
    re_path(r"^admin/", admin.site.urls),
    re_path(r"^applogs/", include("applogs.urls")),
    re_path(r"^log-probe/$", log_probe),
]
