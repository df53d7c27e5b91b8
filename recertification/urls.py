from __future__ import annotations

from recertification import views

app_name = "recertification"
urlpatterns = views.urlpatterns
