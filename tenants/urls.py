from __future__ import annotations

from django.urls import include, path

from tenants import views
from tenants.views import audit, kommune, nhn, people, vendor

app_name = "tenants"
urlpatterns = [
    path("", views.home, name="home"),
    path("o/<str:orgnr>/", include(people.urlpatterns)),
    path("o/<str:orgnr>/", include(kommune.urlpatterns)),
    path("o/<str:orgnr>/", include(vendor.urlpatterns)),
    path("o/<str:orgnr>/", include(nhn.urlpatterns)),
    path("o/<str:orgnr>/", include(audit.urlpatterns)),
]
