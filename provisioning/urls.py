from __future__ import annotations

from django.urls import include, path

from provisioning import data_access_views, overview, views

app_name = "provisioning"
urlpatterns = [
    path("o/<str:orgnr>/", include(views.urlpatterns)),
    path("o/<str:orgnr>/", include(data_access_views.urlpatterns)),
    path("o/<str:orgnr>/", include(overview.urlpatterns)),
]
