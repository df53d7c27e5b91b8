from __future__ import annotations

from django.urls import include, path

from provisioning import views

app_name = "provisioning"
urlpatterns = [
    path("o/<str:orgnr>/", include(views.urlpatterns)),
]
