from __future__ import annotations

from django.urls import include, path

from orders import views
from orders.views import (
    history,
    instruction,
    kommune,
    nhn,
    ordering,
    register,
    suspension,
    vendor,
)

app_name = "orders"
urlpatterns = [
    path("services/", views.catalogue, name="catalogue"),
    path("o/<str:orgnr>/", views.dashboard, name="dashboard"),
    path("o/<str:orgnr>/", include(kommune.urlpatterns)),
    path("o/<str:orgnr>/", include(vendor.urlpatterns)),
    path("o/<str:orgnr>/", include(nhn.urlpatterns)),
    path("o/<str:orgnr>/", include(instruction.urlpatterns)),
    path("o/<str:orgnr>/", include(ordering.urlpatterns)),
    path("o/<str:orgnr>/", include(suspension.urlpatterns)),
    path("o/<str:orgnr>/", include(register.urlpatterns)),
    path("o/<str:orgnr>/", include(history.urlpatterns)),
]
