"""URLs: the HTML pages, people's login under /oidc/, the API under /api/v1/, probes and
metrics."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from notifications.api.views import NotificationViewSet
from orders.api.register import EpjRegisterViewSet
from orders.api.views import (
    AccessHistoryViewSet,
    AccessRequestViewSet,
    ClientViewSet,
    DelegationViewSet,
    GrantViewSet,
    InstructionViewSet,
    ServiceViewSet,
    organization_lift_suspension,
    organization_suspend,
)
from portal.health import healthz, readyz
from provisioning.api.overview import overview
from provisioning.api.views import DataAccessView, ProvisioningJobViewSet
from provisioning.metrics import metrics
from recertification.api.views import RecertificationViewSet
from tenants.api.audit import AuditEventViewSet
from tenants.api.views import MembershipViewSet, OrganizationViewSet, ProductViewSet
from tenants.views.language import set_language

router = DefaultRouter()
router.register("services", ServiceViewSet, basename="service")
router.register("organizations", OrganizationViewSet, basename="organization")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("products", ProductViewSet, basename="product")
router.register("instructions", InstructionViewSet, basename="instruction")
router.register("delegations", DelegationViewSet, basename="delegation")
router.register("clients", ClientViewSet, basename="client")
router.register("access-requests", AccessRequestViewSet, basename="access-request")
router.register("grants", GrantViewSet, basename="grant")
router.register("access-history", AccessHistoryViewSet, basename="access-history")
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("provisioning-jobs", ProvisioningJobViewSet, basename="provisioning-job")
router.register("notifications", NotificationViewSet, basename="notification")
router.register("epj-register", EpjRegisterViewSet, basename="epj-register")
router.register("recertifications", RecertificationViewSet, basename="recertification")

handler400 = "portal.api.bad_request"

urlpatterns = [
    path("", include("tenants.urls")),
    path("", include("orders.urls")),
    path("", include("provisioning.urls")),
    path("", include("notifications.urls")),
    path("", include("recertification.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    # Django's language switch, which also keeps a logged-in person's choice for their e-mails.
    path("i18n/setlang/", set_language, name="set_language"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # For Prometheus, with a bearer token (settings.METRICS_TOKEN); README, "Metrics and logs".
    path("metrics", metrics, name="metrics"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file of its own: the page holds to
    # the Content-Security-Policy (templates/drf_spectacular/swagger_ui.html drops its <style>).
    path(
        "api/v1/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path(
        "api/v1/organizations/<str:orgnr>/suspend/",
        organization_suspend,
        name="organization-suspend",
    ),
    path(
        "api/v1/organizations/<str:orgnr>/lift-suspension/",
        organization_lift_suspension,
        name="organization-lift-suspension",
    ),
    path("api/v1/overview/", overview, name="overview"),
    # Not a viewset: one page of calls with their daily counts beside them, not a list.
    path("api/v1/data-access/", DataAccessView.as_view(), name="data-access"),
    path("api/v1/", include(router.urls)),
]
