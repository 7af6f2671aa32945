from . import views
from .compat import path

app_name = "applogs"

urlpatterns = [
    path("", views.log_list, name="list"),
    path("export/", views.log_export, name="export"),
    path("tail/", views.log_tail, name="tail"),
    path("<int:pk>/", views.log_detail, name="detail"),
]
