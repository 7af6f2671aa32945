app_name = "applogs"
urlpatterns = []
