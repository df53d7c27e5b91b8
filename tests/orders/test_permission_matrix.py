"""The authorization matrix: every route of the URL configuration and every operation of the
OpenAPI schema, by method, for every kind of caller.

The expected statuses are the specification, written out by hand, not derived from the permission
code (docs/permissions.md). ``test_every_route_and_operation_has_an_entry`` walks the URL
configuration (includes, DRF router routes with their actions) and drf-spectacular's schema, so a
new endpoint or page without a row here fails. For every row, each caller's call must answer the
status written; a refused call (400/401/403/404/405/409, or the login redirect) must leave the
database exactly as it was, and an allowed write must leave an audit event.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from audit.models import AuditEvent
from notifications.models import Notification
from orders import services
from orders.models import (
    AccessRequest,
    Grant,
    GrantStatus,
    Instruction,
    ItemStatus,
    ProvisioningJob,
    Service,
)
from orders.views.instruction import STEPS
from tenants.models import ClientKey, Membership, OAuthClient, Organisation, Role
from tests.conftest import World, people_make, world_make
from tests.factories import (
    KommuneOrganisationFactory,
    OrganisationFactory,
    api_session,
    automation_client_post,
    fresh_id_token,
)
from tests.keys import jwks, rsa_private_key, rsa_public_jwk

pytestmark = pytest.mark.django_db

# --- Who calls -----------------------------------------------------------------------------------

#: The callers, in the order of a row's columns. "automation" is an automation client of the
#: kommune's (purpose portal_api) holding the kommune admin role, calling with a bearer token; on
#: the pages it has no session, so it is sent to log in like anyone without one.
ROLES = (
    "kommune_admin",  # K   this kommune's admin
    "kommune_reader",  # R   this kommune's reader
    "other_kommune_admin",  # K'  another kommune's admin
    "vendor_admin",  # V   this vendor's admin (the vendor the kommune delegated to)
    "vendor_developer",  # D   this vendor's developer
    "other_vendor_admin",  # V'  another vendor's admin
    "nhn_auditor",  # A   NHN's auditor
    "nhn_operator",  # O   NHN's operator
    "automation",  # B   the kommune's automation client (bearer token, kommune admin role)
    "vendor_automation",  # C   this vendor's automation client (bearer token, vendor admin role)
    "anonymous",  # -   nobody logged in
)

# Recurring rows, by what they say. Columns:        K   R   K'  V   D   V'  A   O   B   C   -
EVERYONE_LOGGED_IN = "            200 200 200 200 200 200 200 200 200 200 401"  # lists: scoped
NHN_STAFF_ONLY = "                403 403 403 403 403 403 200 200 403 403 401"
THE_KOMMUNE_AND_NHN = "           200 200 404 404 404 404 200 200 200 404 401"
THE_KOMMUNE_ITS_VENDOR_AND_NHN = "200 200 404 200 200 404 200 200 200 200 401"
# Pages: anyone without a session (the automation client too) is sent to log in.
ANYONE_LOGGED_IN_PAGE = "         200 200 200 200 200 200 200 200 302 302 302"
KOMMUNE_PAGE = "                  200 200 404 404 404 404 404 404 302 302 302"
KOMMUNE_ADMIN_PAGE = "            200 403 404 404 404 404 404 404 302 302 302"
VENDOR_PAGE = "                   404 404 404 200 200 404 404 404 302 302 302"
VENDOR_ADMIN_PAGE = "             404 404 404 200 403 404 404 404 302 302 302"
NHN_PAGE = "                      404 404 404 404 404 404 200 200 302 302 302"
NHN_OPERATOR_PAGE = "             404 404 404 404 404 404 403 200 302 302 302"
# A GET of a page that only takes POST: refused before anything else.
POST_ONLY = "                     405 405 405 405 405 405 405 405 405 405 405"

# --- The API -------------------------------------------------------------------------------------

# (method, route name): the statuses, one per caller in ROLES order. Anonymous callers get 401
# everywhere. A kommune reader reads its kommune's data and changes nothing (403 where it sees the
# object, 404 where it does not); a vendor developer registers its vendor's clients and rotates
# their keys, and leaves ordering, products and removing clients to the vendor admin.
#                                                K   R   K'  V   D   V'  A   O   B   C   -
API: dict[tuple[str, str], str] = {
    ("GET", "access-history-list"): EVERYONE_LOGGED_IN,
    ("POST", "access-request-approve"): "200 403 404 403 403 404 403 403 200 403 401",
    # A kommune-initiated order, which the client's vendor admin consents to.
    ("POST", "access-request-consent"): "403 403 404 200 403 404 403 403 403 200 401",
    ("GET", "access-request-detail"): THE_KOMMUNE_ITS_VENDOR_AND_NHN,
    ("GET", "access-request-list"): EVERYONE_LOGGED_IN,
    ("POST", "access-request-list"): "201 403 404 201 403 404 403 403 201 201 401",
    ("POST", "access-request-reject"): "200 403 404 403 403 404 403 403 200 403 401",
    # A vendor-initiated order: the requester's side withdraws.
    ("POST", "access-request-withdraw"): "403 403 404 200 403 404 403 403 403 200 401",
    ("GET", "api-root"): EVERYONE_LOGGED_IN,
    # Audit events are read by the admins of the organisation they concern, and by NHN.
    ("GET", "audit-event-detail"): "200 404 404 404 404 404 200 200 200 404 401",
    ("GET", "audit-event-export"): NHN_STAFF_ONLY,
    ("GET", "audit-event-head"): NHN_STAFF_ONLY,
    ("GET", "audit-event-list"): EVERYONE_LOGGED_IN,
    ("DELETE", "client-detail"): "403 403 404 204 403 404 403 204 403 204 401",
    ("GET", "client-detail"): THE_KOMMUNE_ITS_VENDOR_AND_NHN,
    ("PUT", "client-jwks"): "403 403 404 200 200 404 403 403 403 200 401",
    ("GET", "client-list"): EVERYONE_LOGGED_IN,
    ("POST", "client-list"): "404 404 404 201 201 404 403 403 404 201 401",
    ("GET", "data-access"): EVERYONE_LOGGED_IN,
    ("GET", "delegation-detail"): THE_KOMMUNE_ITS_VENDOR_AND_NHN,
    ("GET", "delegation-list"): EVERYONE_LOGGED_IN,
    ("POST", "delegation-list"): "201 403 404 404 404 404 403 403 201 404 401",
    ("POST", "delegation-revoke"): "200 403 404 403 403 404 403 403 200 403 401",
    ("GET", "epj-register-detail"): THE_KOMMUNE_AND_NHN,
    ("GET", "epj-register-export"): EVERYONE_LOGGED_IN,
    ("GET", "epj-register-list"): EVERYONE_LOGGED_IN,
    ("GET", "grant-detail"): THE_KOMMUNE_ITS_VENDOR_AND_NHN,
    ("GET", "grant-list"): EVERYONE_LOGGED_IN,
    ("POST", "grant-revoke"): "200 403 404 403 403 404 403 200 200 403 401",
    ("GET", "instruction-detail"): THE_KOMMUNE_AND_NHN,
    ("PATCH", "instruction-detail"): "200 403 404 404 404 404 403 403 200 404 401",
    ("GET", "instruction-list"): EVERYONE_LOGGED_IN,
    ("POST", "instruction-list"): "201 403 404 404 404 404 403 403 201 404 401",
    # Signing needs a person's fresh login: an automation client never signs.
    ("POST", "instruction-sign"): "200 403 404 404 404 404 403 403 403 404 401",
    # The kommune reader's membership: an operator may remove a member who is no administrator.
    ("DELETE", "membership-detail"): "204 403 404 404 404 404 403 204 204 404 401",
    ("GET", "membership-detail"): THE_KOMMUNE_AND_NHN,
    ("PATCH", "membership-detail"): "200 403 404 404 404 404 403 403 200 404 401",
    ("GET", "membership-list"): EVERYONE_LOGGED_IN,
    ("POST", "membership-list"): "201 403 404 404 404 404 403 403 201 404 401",
    # One of the kommune admin's own notifications: nobody else's to read.
    ("GET", "notification-detail"): "200 404 404 404 404 404 404 404 404 404 401",
    ("GET", "notification-list"): EVERYONE_LOGGED_IN,
    ("POST", "notification-read"): "200 404 404 404 404 404 404 404 404 404 401",
    ("POST", "notification-read-all"): EVERYONE_LOGGED_IN,
    ("GET", "organization-detail"): THE_KOMMUNE_AND_NHN,
    ("PUT", "organization-epj"): "200 403 404 404 404 404 403 403 200 404 401",
    # The vendor: its own members see it (403), other organisations do not (404).
    ("POST", "organization-lift-suspension"): "404 404 404 403 403 404 403 200 404 403 401",
    ("GET", "organization-list"): EVERYONE_LOGGED_IN,
    ("POST", "organization-list"): "403 403 403 403 403 403 403 201 403 403 401",
    ("POST", "organization-suspend"): "404 404 404 403 403 404 403 200 404 403 401",
    ("GET", "overview"): NHN_STAFF_ONLY,
    ("GET", "product-detail"): EVERYONE_LOGGED_IN,
    # Products are visible to everyone logged in, so nobody is an outsider to them (403).
    ("PATCH", "product-detail"): "403 403 403 200 403 403 403 403 403 200 401",
    ("GET", "product-list"): EVERYONE_LOGGED_IN,
    ("POST", "product-list"): "404 404 404 201 403 404 403 403 404 201 401",
    ("POST", "product-verify"): "403 403 403 403 403 403 403 200 403 403 401",
    ("GET", "provisioning-job-detail"): NHN_STAFF_ONLY,
    ("GET", "provisioning-job-list"): NHN_STAFF_ONLY,
    ("POST", "provisioning-job-retry"): "403 403 403 403 403 403 403 200 403 403 401",
    ("POST", "recertification-confirm"): "200 403 404 404 404 404 403 403 200 404 401",
    ("GET", "recertification-list"): EVERYONE_LOGGED_IN,
    ("GET", "service-detail"): EVERYONE_LOGGED_IN,
    ("GET", "service-list"): EVERYONE_LOGGED_IN,
}

# --- The pages -----------------------------------------------------------------------------------

# Pages under /o/<orgnr>/ act for the organisation in the address (the kommune's, the vendor's or
# NHN's, PAGE_TARGETS): anyone not logged in is sent to log in (302), a non-member gets 404, a
# member without the role 403, and an allowed caller the page (200), a form shown again with its
# errors (200) or the redirect after a change (302). Pages take GET and POST only.
#                                                K   R   K'  V   D   V'  A   O   B   C   -
PAGES: dict[tuple[str, str], str] = {
    ("GET", "notifications:list"): ANYONE_LOGGED_IN_PAGE,
    ("POST", "notifications:list"): ANYONE_LOGGED_IN_PAGE,
    ("GET", "notifications:notification"): "200 404 404 404 404 404 404 404 302 302 302",
    ("POST", "notifications:notification"): "200 404 404 404 404 404 404 404 302 302 302",
    # Notifications are the person's own, not an organisation's.
    ("GET", "notifications:read_all"): "405 405 405 405 405 405 405 405 302 302 302",
    ("POST", "notifications:read_all"): "302 302 302 302 302 302 302 302 302 302 302",
    ("GET", "orders:access"): KOMMUNE_PAGE,
    ("POST", "orders:access"): KOMMUNE_PAGE,
    ("GET", "orders:access_history"): KOMMUNE_PAGE,
    ("POST", "orders:access_history"): KOMMUNE_PAGE,
    ("GET", "orders:approval"): KOMMUNE_PAGE,
    ("POST", "orders:approval"): "302 403 404 404 404 404 404 404 302 302 302",
    ("GET", "orders:approvals"): KOMMUNE_PAGE,
    ("POST", "orders:approvals"): KOMMUNE_ADMIN_PAGE,
    ("GET", "orders:availability"): NHN_PAGE,
    ("POST", "orders:availability"): NHN_PAGE,
    ("GET", "orders:availability_edit"): NHN_OPERATOR_PAGE,
    ("POST", "orders:availability_edit"): "404 404 404 404 404 404 403 302 302 302 302",
    ("GET", "orders:catalogue"): ANYONE_LOGGED_IN_PAGE,
    ("POST", "orders:catalogue"): ANYONE_LOGGED_IN_PAGE,
    ("GET", "orders:client"): VENDOR_PAGE,
    ("POST", "orders:client"): VENDOR_PAGE,
    ("GET", "orders:client_key_add"): VENDOR_PAGE,
    ("POST", "orders:client_key_add"): VENDOR_PAGE,
    ("GET", "orders:client_key_remove"): POST_ONLY,
    # Developers rotate keys; removing the only key is refused on the page (302, nothing changed).
    ("POST", "orders:client_key_remove"): "404 404 404 302 302 404 404 404 302 302 302",
    ("GET", "orders:client_new"): VENDOR_PAGE,
    ("POST", "orders:client_new"): VENDOR_PAGE,
    ("GET", "orders:client_remove"): VENDOR_ADMIN_PAGE,
    ("POST", "orders:client_remove"): "404 404 404 302 403 404 404 404 302 302 302",
    ("GET", "orders:clients"): VENDOR_PAGE,
    ("POST", "orders:clients"): VENDOR_PAGE,
    ("GET", "orders:dashboard"): KOMMUNE_PAGE,
    ("POST", "orders:dashboard"): KOMMUNE_PAGE,
    ("GET", "orders:delegation_new"): KOMMUNE_ADMIN_PAGE,
    ("POST", "orders:delegation_new"): KOMMUNE_ADMIN_PAGE,
    ("GET", "orders:delegation_revoke"): KOMMUNE_ADMIN_PAGE,
    ("POST", "orders:delegation_revoke"): "302 403 404 404 404 404 404 404 302 302 302",
    ("GET", "orders:delegations"): KOMMUNE_PAGE,
    ("POST", "orders:delegations"): KOMMUNE_PAGE,
    ("GET", "orders:epj_register"): NHN_PAGE,
    ("POST", "orders:epj_register"): NHN_PAGE,
    ("GET", "orders:grant_revoke"): KOMMUNE_ADMIN_PAGE,
    ("POST", "orders:grant_revoke"): "302 403 404 404 404 404 404 404 302 302 302",
    ("GET", "orders:grant_try"): VENDOR_PAGE,
    ("POST", "orders:grant_try"): VENDOR_PAGE,
    ("GET", "orders:instruction"): KOMMUNE_PAGE,
    ("POST", "orders:instruction"): KOMMUNE_PAGE,
    ("GET", "orders:instruction_compare"): KOMMUNE_PAGE,
    ("POST", "orders:instruction_compare"): KOMMUNE_PAGE,
    ("GET", "orders:instruction_confirm_login"): "302 403 404 404 404 404 404 404 302 302 302",
    ("POST", "orders:instruction_confirm_login"): "302 403 404 404 404 404 404 404 302 302 302",
    ("GET", "orders:instruction_new"): "302 403 404 404 404 404 404 404 302 302 302",
    ("POST", "orders:instruction_new"): "302 403 404 404 404 404 404 404 302 302 302",
    ("GET", "orders:instruction_print"): KOMMUNE_PAGE,
    ("POST", "orders:instruction_print"): KOMMUNE_PAGE,
    ("GET", "orders:instruction_review"): KOMMUNE_ADMIN_PAGE,
    ("POST", "orders:instruction_review"): KOMMUNE_ADMIN_PAGE,
    # Signing is a POST; a GET is sent to the review page, which refuses readers.
    ("GET", "orders:instruction_sign"): "302 302 404 404 404 404 404 404 302 302 302",
    ("POST", "orders:instruction_sign"): "302 403 404 404 404 404 404 404 302 302 302",
    ("GET", "orders:instruction_step"): KOMMUNE_ADMIN_PAGE,
    ("POST", "orders:instruction_step"): KOMMUNE_ADMIN_PAGE,
    ("GET", "orders:matrix"): NHN_PAGE,
    ("POST", "orders:matrix"): NHN_PAGE,
    ("GET", "orders:nhn_grants"): NHN_PAGE,
    ("POST", "orders:nhn_grants"): NHN_PAGE,
    ("GET", "orders:order"): VENDOR_PAGE,
    ("POST", "orders:order"): VENDOR_PAGE,
    ("GET", "orders:order_consent"): POST_ONLY,
    ("POST", "orders:order_consent"): VENDOR_ADMIN_PAGE,
    ("GET", "orders:order_new"): VENDOR_ADMIN_PAGE,
    ("POST", "orders:order_new"): VENDOR_ADMIN_PAGE,
    ("GET", "orders:order_send"): POST_ONLY,
    ("POST", "orders:order_send"): "404 404 404 302 403 404 404 404 302 302 302",
    ("GET", "orders:order_withdraw"): POST_ONLY,
    ("POST", "orders:order_withdraw"): VENDOR_ADMIN_PAGE,
    ("GET", "orders:orders"): VENDOR_PAGE,
    ("POST", "orders:orders"): VENDOR_PAGE,
    ("GET", "orders:vendor"): NHN_PAGE,
    ("POST", "orders:vendor"): NHN_PAGE,
    ("GET", "orders:vendor_lift"): POST_ONLY,
    ("POST", "orders:vendor_lift"): "404 404 404 404 404 404 403 302 302 302 302",
    ("GET", "orders:vendor_suggestions"): KOMMUNE_ADMIN_PAGE,
    ("POST", "orders:vendor_suggestions"): KOMMUNE_ADMIN_PAGE,
    ("GET", "orders:vendor_suspend"): POST_ONLY,
    ("POST", "orders:vendor_suspend"): "404 404 404 404 404 404 403 302 302 302 302",
    ("GET", "orders:vendors"): NHN_PAGE,
    ("POST", "orders:vendors"): NHN_PAGE,
    ("GET", "provisioning:data_access"): KOMMUNE_PAGE,
    ("POST", "provisioning:data_access"): KOMMUNE_PAGE,
    ("GET", "provisioning:job"): NHN_PAGE,
    ("POST", "provisioning:job"): NHN_PAGE,
    ("GET", "provisioning:job_retry"): POST_ONLY,
    ("POST", "provisioning:job_retry"): "404 404 404 404 404 404 403 302 302 302 302",
    ("GET", "provisioning:jobs"): NHN_PAGE,
    ("POST", "provisioning:jobs"): NHN_PAGE,
    ("GET", "provisioning:national"): NHN_PAGE,
    ("POST", "provisioning:national"): NHN_PAGE,
    ("GET", "recertification:page"): KOMMUNE_PAGE,
    ("POST", "recertification:page"): KOMMUNE_ADMIN_PAGE,
    ("GET", "tenants:audit"): NHN_PAGE,
    ("POST", "tenants:audit"): NHN_PAGE,
    ("GET", "tenants:epj"): KOMMUNE_PAGE,
    ("POST", "tenants:epj"): "302 403 404 404 404 404 404 404 302 302 302",
    # The front page: a login for anyone who has not.
    ("GET", "tenants:home"): "200 200 200 200 200 200 200 200 200 200 200",
    ("POST", "tenants:home"): "200 200 200 200 200 200 200 200 200 200 200",
    ("GET", "tenants:organisation"): NHN_PAGE,
    ("POST", "tenants:organisation"): NHN_OPERATOR_PAGE,
    ("GET", "tenants:organisation_new"): NHN_OPERATOR_PAGE,
    ("POST", "tenants:organisation_new"): NHN_OPERATOR_PAGE,
    ("GET", "tenants:organisations"): NHN_PAGE,
    ("POST", "tenants:organisations"): NHN_PAGE,
    ("GET", "tenants:people"): KOMMUNE_PAGE,
    ("POST", "tenants:people"): KOMMUNE_PAGE,
    ("GET", "tenants:person"): KOMMUNE_PAGE,
    ("POST", "tenants:person"): KOMMUNE_ADMIN_PAGE,
    ("GET", "tenants:person_invite"): KOMMUNE_ADMIN_PAGE,
    ("POST", "tenants:person_invite"): "302 403 404 404 404 404 404 404 302 302 302",
    ("GET", "tenants:person_remove"): KOMMUNE_ADMIN_PAGE,
    ("POST", "tenants:person_remove"): "302 403 404 404 404 404 404 404 302 302 302",
    ("GET", "tenants:product"): VENDOR_PAGE,
    ("POST", "tenants:product"): VENDOR_ADMIN_PAGE,
    ("GET", "tenants:product_new"): VENDOR_ADMIN_PAGE,
    ("POST", "tenants:product_new"): "404 404 404 302 403 404 404 404 302 302 302",
    ("GET", "tenants:product_verification"): NHN_PAGE,
    ("POST", "tenants:product_verification"): NHN_PAGE,
    ("GET", "tenants:product_verify"): NHN_PAGE,
    ("POST", "tenants:product_verify"): "404 404 404 404 404 404 403 302 302 302 302",
    ("GET", "tenants:products"): VENDOR_PAGE,
    ("POST", "tenants:products"): VENDOR_PAGE,
}

#: Pages take GET and POST only (portal/page_methods.py): a PUT, PATCH or DELETE is a 405 for
#: every caller, before the session or the organisation in the address is looked at.
NOT_A_PAGE_METHOD = " ".join(["405"] * len(ROLES))
OTHER_PAGE_METHODS = ("PUT", "PATCH", "DELETE")
PAGES |= {
    (method, route): NOT_A_PAGE_METHOD
    for (get, route) in list(PAGES)
    if get == "GET"
    for method in OTHER_PAGE_METHODS
}

# --- What the matrix leaves out, and why ---------------------------------------------------------

#: Routes with no entry: none of them acts on anyone's data.
EXCLUDED = {
    "oidc_authentication_init",  # the login: sends anyone to the provider
    "oidc_authentication_callback",  # the provider's redirect back, checked by its own tests
    "oidc_logout",
    "set_language",  # Django's language switch, for anyone
    "healthz",  # probes
    "readyz",
    "api-schema",  # the OpenAPI document and its viewer
    "api-docs",
    # Prometheus' scrape: no person or role, only the METRICS_TOKEN bearer (404 without the
    # setting, 401 without the token): tests/portal/test_metrics.py
    "metrics",
}

#: Writes that are no audited change: reading one's own notifications, and lifting a suspension
#: that is not in force (the vendor here is not suspended: nothing changes).
NOT_AUDITED = {
    ("POST", "organization-lift-suspension"),
    ("POST", "notification-read"),
    ("POST", "notification-read-all"),
    ("POST", "notifications:notification"),
    ("POST", "notifications:read_all"),
}

SPEC = {**API, **PAGES}


def statuses(row: str) -> dict[str, int]:
    values = [int(value) for value in row.split()]
    assert len(values) == len(ROLES), row
    return dict(zip(ROLES, values, strict=True))


# --- Every route and operation has an entry ------------------------------------------------------

PAGE_METHODS = ("GET", "POST", *OTHER_PAGE_METHODS)
#: What an HTTP method of a class-based view is not: the view answers these itself.
NOT_OPERATIONS = {"options", "head", "trace"}


def _walk(patterns: list[Any], namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, inner)
        elif pattern.name is not None:
            yield f"{namespace}{pattern.name}", pattern


def urlconf_routes() -> set[tuple[str, str]]:
    """(method, route name) of every route: a viewset's actions by method, an API view's
    handlers, and GET, POST, PUT, PATCH and DELETE for each page."""
    routes = set()
    for name, pattern in _walk(get_resolver().url_patterns):
        if name in EXCLUDED or "format" in pattern.pattern.regex.groupindex:
            continue  # a DRF format suffix (``.json``) is the same view as its route
        callback = pattern.callback
        actions = getattr(callback, "actions", None)
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if actions:  # a viewset's route: the actions it maps and does not refuse
            allowed = set(view_class.http_method_names) if view_class else set(actions)
            # DRF adds ``head`` to a route's actions on its first GET (the dict is the route's
            # own): HEAD is GET without the body, like the other NOT_OPERATIONS.
            methods = {
                method.upper()
                for method in actions
                if method in allowed and method not in NOT_OPERATIONS
            }
        elif view_class is not None:
            methods = {
                method.upper()
                for method in view_class.http_method_names
                if method not in NOT_OPERATIONS and hasattr(view_class, method)
            }
        else:
            methods = set(PAGE_METHODS)
        routes |= {(method, name) for method in methods}
    return routes


def schema_operations() -> set[tuple[str, str]]:
    """(method, route name) of every operation of the OpenAPI schema, generated in-process."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = set()
    for path, item in schema["paths"].items():
        name = resolve(re.sub(r"\{[^}]+\}", "x", path)).view_name
        operations |= {(method.upper(), name) for method in item if method != "parameters"}
    return operations


def test_every_route_and_operation_has_an_entry() -> None:
    routes, operations = urlconf_routes(), schema_operations()
    assert len(operations) > 50, "the schema lost its operations"

    assert {
        "operations of the schema that no route serves": sorted(operations - routes),
        "routes and operations without a row": sorted((routes | operations) - set(SPEC)),
        "rows of routes that are gone": sorted(set(SPEC) - routes),
        "rows both of the API and of the pages": sorted(set(API) & set(PAGES)),
    } == {
        "operations of the schema that no route serves": [],
        "routes and operations without a row": [],
        "rows of routes that are gone": [],
        "rows both of the API and of the pages": [],
    }


def test_the_rows_name_a_status_for_every_caller() -> None:
    for row in SPEC.values():
        assert set(statuses(row).values()) <= {200, 201, 204, 302, 401, 403, 404, 405}


# --- The state the calls act on ------------------------------------------------------------------


@dataclass
class State:
    world: World
    people: dict[str, Any]
    nhn: Organisation
    grant: Grant  # approved through the delegation
    waiting: AccessRequest  # one vendor-initiated item awaiting the kommune
    consenting: AccessRequest  # one kommune-initiated item awaiting the vendor's consent
    draft: Instruction  # a draft instruction of world.kommune
    automation: OAuthClient  # the kommune's automation client
    token: str  # its bearer token
    vendor_automation: OAuthClient  # the vendor's automation client
    vendor_token: str  # its bearer token
    reader: Membership  # the kommune reader's membership
    key: ClientKey  # the world's client's key
    job: ProvisioningJob  # the grant's provisioning job
    notification: Notification  # one of the kommune admin's
    event: AuditEvent  # one of the kommune's
    sessions: dict[str, str]  # each person's session key, just after their login


INSTRUCTION_DATA: dict[str, Any] = {
    "subject_matter": "Velferdsteknologi og pasientdata",
    "duration": "Til avtalen sies opp",
    "nature_and_purpose": "Innsamling og tilgjengeliggjøring av helsedata",
    "personal_data_categories": ["helseopplysninger"],
    "data_subject_categories": ["pasienter"],
    "sharing_scope": "kommune_only",
    "retention": "Så lenge tjenesten ytes",
    "contact_name": "Kari Nordmann",
    "contact_email": "kari@kommune.example",
}

#: The automation client's key, and the address of the keys its tokens are checked against.
AUTOMATION_KID = "matrix-automation"


@pytest.fixture(scope="module")
def token_keys() -> Iterator[str]:
    """The authorization server's JWKS endpoint, as the portal fetches it: the automation client's
    bearer token goes through ``AutomationTokenAuthentication`` unchanged (signature, issuer,
    audience, expiry, the client's purpose). That the real oidc-provider issues such tokens is
    shown by ``tests/provisioning/test_automation.py``."""
    body = json.dumps(jwks(rsa_public_jwk(AUTOMATION_KID, seed=3))).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()
    thread.join()


def automation_token(client_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.OIDC_OP_ISSUER,
        "aud": settings.PORTAL_API_AUDIENCE,
        "client_id": client_id,
        "iat": now,
        "exp": now + 3600,
    }
    key = rsa_private_key(3).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": AUTOMATION_KID})


@pytest.fixture(scope="module")
def state(django_db_setup: None, django_db_blocker: Any, token_keys: str) -> Iterator[State]:
    """One world for the whole module, built in a transaction rolled back at its end: each test
    runs in a savepoint inside it (pytest-django's), and each call in one more (``call``)."""
    with (
        django_db_blocker.unblock(),
        override_settings(OIDC_OP_JWKS_ENDPOINT=token_keys),
        transaction.atomic(),
    ):
        yield state_make()
        transaction.set_rollback(True)


def automation_client_register(
    admin: Any, organisation: Organisation, role: str, client_id: str
) -> OAuthClient:
    """An automation client of ``organisation`` holding ``role``, registered by its admin through
    the API, with the client_id provisioning sets once the authorization server registered it."""
    registered = automation_client_post(admin, organisation.orgnr, role, kid=AUTOMATION_KID, seed=3)
    OAuthClient.objects.filter(pk=registered["id"]).update(client_id=client_id)
    return OAuthClient.objects.get(pk=registered["id"])


def state_make() -> State:
    kommune, other_kommune = KommuneOrganisationFactory(), KommuneOrganisationFactory()
    vendor, other_vendor = (OrganisationFactory(kind=Organisation.Kind.VENDOR) for _ in "12")
    nhn = OrganisationFactory(kind=Organisation.Kind.OPERATOR, name="Norsk helsenett SF")
    people = people_make(
        kommune=kommune,
        vendor=vendor,
        nhn=nhn,
        other_kommune=other_kommune,
        other_vendor=other_vendor,
    )
    world = world_make(
        people=people,
        kommune=kommune,
        vendor=vendor,
        other_kommune=other_kommune,
        other_vendor=other_vendor,
    )
    patient, care_plan, episode = (
        Service.objects.get(code=code) for code in ("patient", "care-plan", "episode-of-care")
    )
    [granted] = services.access_request_create(
        client=world.client,
        kommuner=[world.kommune],
        items=[services.ItemInput(service=patient, access="read")],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=people["vendor_admin"],
    )
    grant = Grant.objects.get(request_items__request=granted)

    # The delegation stops covering episode-of-care, so the vendor's request for it waits.
    world.delegation.items.filter(service=episode).delete()
    [waiting] = services.access_request_create(
        client=world.client,
        kommuner=[world.kommune],
        items=[services.ItemInput(service=episode, access="read")],
        initiated_by=AccessRequest.Initiator.VENDOR,
        actor=people["vendor_admin"],
    )
    [consenting] = services.access_request_create(
        client=world.client,
        kommuner=[world.kommune],
        items=[services.ItemInput(service=care_plan, access="read")],
        initiated_by=AccessRequest.Initiator.KOMMUNE,
        actor=people["kommune_admin"],
    )
    draft = services.instruction_create(
        kommune=world.kommune,
        actor=people["kommune_admin"],
        services=list(Service.objects.all()),
        data=dict(INSTRUCTION_DATA),
    )

    automation = automation_client_register(
        people["kommune_admin"], world.kommune, Role.KOMMUNE_ADMIN, "matrix-automation"
    )
    vendor_automation = automation_client_register(
        people["vendor_admin"], world.vendor, Role.VENDOR_ADMIN, "matrix-vendor-automation"
    )
    # The grant's job failed, so that an operator may retry it.
    job = ProvisioningJob.objects.filter(grant=grant).earliest("created_at")
    ProvisioningJob.objects.filter(pk=job.pk).update(
        status=ProvisioningJob.Status.FAILED, last_error="gateway down"
    )

    assert grant.status == GrantStatus.PENDING  # approved, waiting for provisioning
    assert list(waiting.items.values_list("status", flat=True)) == [ItemStatus.AWAITING_KOMMUNE]
    assert list(consenting.items.values_list("status", flat=True)) == [ItemStatus.AWAITING_VENDOR]
    assert draft.signed_at is None
    return State(
        world=world,
        people=people,
        nhn=nhn,
        grant=grant,
        waiting=waiting,
        consenting=consenting,
        draft=draft,
        automation=automation,
        token=automation_token(automation.client_id),
        vendor_automation=vendor_automation,
        vendor_token=automation_token(vendor_automation.client_id),
        reader=Membership.objects.get(user=people["kommune_reader"]),
        key=world.client.keys.get(),
        job=job,
        notification=Notification.objects.filter(recipient=people["kommune_admin"]).earliest(
            "created_at"
        ),
        event=AuditEvent.objects.filter(organisation_orgnr=world.kommune.orgnr).latest("pk"),
        sessions={
            role: api_session(person).cookies[settings.SESSION_COOKIE_NAME].value
            for role, person in people.items()
        },
    )


Args = Callable[[State], list[Any]]

#: The object each API route acts on.
API_TARGETS: dict[str, Args] = {
    "service-detail": lambda s: ["patient"],
    "organization-detail": lambda s: [s.world.kommune.orgnr],
    "organization-epj": lambda s: [s.world.kommune.orgnr],
    "organization-suspend": lambda s: [s.world.vendor.orgnr],
    "organization-lift-suspension": lambda s: [s.world.vendor.orgnr],
    "membership-detail": lambda s: [s.reader.pk],
    "product-detail": lambda s: [s.world.product.pk],
    "product-verify": lambda s: [s.world.product.pk],
    "instruction-detail": lambda s: [s.draft.pk],
    "instruction-sign": lambda s: [s.draft.pk],
    "delegation-detail": lambda s: [s.world.delegation.pk],
    "delegation-revoke": lambda s: [s.world.delegation.pk],
    "client-detail": lambda s: [s.world.client.pk],
    "client-jwks": lambda s: [s.world.client.pk],
    "access-request-detail": lambda s: [s.waiting.pk],
    "access-request-approve": lambda s: [s.waiting.pk],
    "access-request-reject": lambda s: [s.waiting.pk],
    "access-request-withdraw": lambda s: [s.waiting.pk],
    "access-request-consent": lambda s: [s.consenting.pk],
    "grant-detail": lambda s: [s.grant.pk],
    "grant-revoke": lambda s: [s.grant.pk],
    "audit-event-detail": lambda s: [s.event.pk],
    "provisioning-job-detail": lambda s: [s.job.pk],
    "provisioning-job-retry": lambda s: [s.job.pk],
    "notification-detail": lambda s: [s.notification.pk],
    "notification-read": lambda s: [s.notification.pk],
    "epj-register-detail": lambda s: [s.world.kommune.orgnr],
}


def kommune(*more: Args) -> Args:
    return lambda s: [s.world.kommune.orgnr, *(arg for f in more for arg in f(s))]


def vendor(*more: Args) -> Args:
    return lambda s: [s.world.vendor.orgnr, *(arg for f in more for arg in f(s))]


def nhn(*more: Args) -> Args:
    return lambda s: [s.nhn.orgnr, *(arg for f in more for arg in f(s))]


#: The organisation each page acts for, and the object it shows.
PAGE_TARGETS: dict[str, Args] = {
    "tenants:people": kommune(),
    "tenants:person_invite": kommune(),
    "tenants:person": kommune(lambda s: [s.reader.pk]),
    "tenants:person_remove": kommune(lambda s: [s.reader.pk]),
    "tenants:epj": kommune(),
    "tenants:products": vendor(),
    "tenants:product_new": vendor(),
    "tenants:product": vendor(lambda s: [s.world.product.pk]),
    "tenants:organisations": nhn(),
    "tenants:organisation_new": nhn(),
    "tenants:organisation": nhn(lambda s: [s.world.kommune.orgnr]),
    "tenants:product_verification": nhn(),
    "tenants:product_verify": nhn(lambda s: [s.world.product.pk]),
    "tenants:audit": nhn(),
    "orders:dashboard": kommune(),
    "orders:delegations": kommune(),
    "orders:delegation_new": kommune(),
    "orders:vendor_suggestions": kommune(),
    "orders:delegation_revoke": kommune(lambda s: [s.world.delegation.pk]),
    "orders:approvals": kommune(),
    "orders:approval": kommune(lambda s: [s.waiting.items.get().pk]),
    "orders:access": kommune(),
    "orders:grant_revoke": kommune(lambda s: [s.grant.pk]),
    "orders:clients": vendor(),
    "orders:client_new": vendor(),
    "orders:client": vendor(lambda s: [s.world.client.pk]),
    "orders:client_key_add": vendor(lambda s: [s.world.client.pk]),
    "orders:client_key_remove": vendor(lambda s: [s.world.client.pk, s.key.pk]),
    "orders:client_remove": vendor(lambda s: [s.world.client.pk]),
    "orders:matrix": nhn(),
    "orders:nhn_grants": nhn(),
    "orders:availability": nhn(),
    "orders:availability_edit": nhn(lambda s: ["patient", "production"]),
    "orders:instruction": kommune(),
    "orders:instruction_new": kommune(),
    "orders:instruction_compare": kommune(),
    "orders:instruction_print": kommune(lambda s: [s.world.instruction.version]),
    "orders:instruction_review": kommune(lambda s: [s.draft.version]),
    "orders:instruction_sign": kommune(lambda s: [s.draft.version]),
    "orders:instruction_confirm_login": kommune(lambda s: [s.draft.version]),
    "orders:instruction_step": kommune(lambda s: [s.draft.version, STEPS[0].slug]),
    "orders:orders": vendor(),
    "orders:order_new": vendor(),
    "orders:order_send": vendor(),
    "orders:order": vendor(lambda s: [s.waiting.pk]),
    "orders:order_withdraw": vendor(lambda s: [s.waiting.pk]),
    "orders:order_consent": vendor(lambda s: [s.consenting.pk]),
    "orders:grant_try": vendor(lambda s: [s.grant.pk]),
    "orders:vendors": nhn(),
    "orders:vendor": nhn(lambda s: [s.world.vendor.orgnr]),
    "orders:vendor_suspend": nhn(lambda s: [s.world.vendor.orgnr]),
    "orders:vendor_lift": nhn(lambda s: [s.world.vendor.orgnr]),
    "orders:epj_register": nhn(),
    "orders:access_history": kommune(),
    "provisioning:jobs": nhn(),
    "provisioning:job": nhn(lambda s: [s.job.pk]),
    "provisioning:job_retry": nhn(lambda s: [s.job.pk]),
    "provisioning:data_access": kommune(),
    "provisioning:national": nhn(),
    "notifications:notification": lambda s: [s.notification.pk],
    "recertification:page": kommune(),
}


def api_body(method: str, route: str, state: State) -> Any:
    """A valid body, so that an allowed caller really succeeds."""
    world = state.world
    bodies: dict[tuple[str, str], Callable[[], Any]] = {
        ("POST", "organization-list"): lambda: {
            "orgnr": "964967636",
            "name": "Tromsø kommune",
            "kind": "kommune",
            "kommune": "5501",
        },
        ("PUT", "organization-epj"): lambda: {"epj_product": None},
        ("POST", "organization-suspend"): lambda: {"reason": "Brudd på vilkårene"},
        ("POST", "product-list"): lambda: {
            "vendor": world.vendor.orgnr,
            "name": "New",
            "system_type": "VFT",
        },
        ("PATCH", "product-detail"): lambda: {"system_type": "EPJ"},
        ("POST", "product-verify"): lambda: {"system_type": "VFT", "is_epic": False},
        ("POST", "membership-list"): lambda: {
            "organisation": world.kommune.orgnr,
            "email": "new@k.example",
            "role": "kommune_reader",
        },
        ("PUT", "membership-detail"): lambda: {"role": "kommune_admin"},
        ("PATCH", "membership-detail"): lambda: {"role": "kommune_admin"},
        ("POST", "instruction-list"): lambda: {
            **INSTRUCTION_DATA,
            "kommune": world.kommune.orgnr,
            "services": ["patient", "care-plan"],
        },
        ("PUT", "instruction-detail"): lambda: {
            **INSTRUCTION_DATA,
            "kommune": world.kommune.orgnr,
            "services": ["patient"],
        },
        ("PATCH", "instruction-detail"): lambda: {"retention": "Ett år"},
        ("POST", "delegation-list"): lambda: {
            "kommune": world.kommune.orgnr,
            "vendor": world.vendor.orgnr,
            "items": [{"service": "patient", "access": "read"}],
        },
        ("POST", "client-list"): lambda: {
            "name": "X",
            "product": str(world.product.id),
            "environment": "production",
            "jwks": jwks(),
        },
        ("PUT", "client-jwks"): lambda: jwks(rsa_public_jwk("new-key", seed=1)),
        ("POST", "access-request-list"): lambda: {
            "client": str(world.client.id),
            "kommune": world.kommune.orgnr,
            "items": [{"service": "care-plan", "access": "read"}],
        },
        ("POST", "recertification-confirm"): lambda: {
            "kommune": world.kommune.orgnr,
            "vendor": world.vendor.orgnr,
        },
    }
    if (method, route) in bodies:
        return bodies[method, route]()
    return None if method in ("GET", "DELETE") else {}


#: Query strings a route needs to answer at all.
QUERIES = {"audit-event-export": "?format=jsonl", "epj-register-export": "?format=csv"}


#: Forms filled in, so that an allowed caller's POST really changes something (other pages get an
#: empty form: shown again with its errors, or an action without fields done).
PAGE_BODIES: dict[str, dict[str, str]] = {
    "tenants:person_invite": {"email": "new@k.example", "role": "kommune_reader"},
    "tenants:product_new": {"name": "New", "system_type": "VFT"},
    "tenants:product_verify": {"system_type": "VFT"},
    "orders:approval": {"decision": "approve"},
    "orders:availability_edit": {"available_from": "2027-01-01"},
    "orders:vendor_suspend": {"reason": "Brudd på vilkårene"},
}


def target_path(route: str, state: State) -> str:
    targets = PAGE_TARGETS if route in PAGES_BY_ROUTE else API_TARGETS
    path = reverse(route, args=targets[route](state) if route in targets else [])
    return path + QUERIES.get(route, "")


PAGES_BY_ROUTE = {route for _, route in PAGES}

# --- Refused calls change nothing ----------------------------------------------------------------

#: Tables a call may write without it being a change of anyone's data: the caller's session.
UNTRACKED_TABLES = {"django_session", "django_migrations"}


Fingerprint = dict[str, tuple[int, str]]


def fingerprint() -> Fingerprint:
    """Each table's row count and a hash of all its rows, in one query."""
    with connection.cursor() as cursor:
        tables = sorted(set(connection.introspection.table_names(cursor)) - UNTRACKED_TABLES)
        cursor.execute(
            " UNION ALL ".join(
                # The names come from the database's own catalogue, quoted.
                f"SELECT %s, count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY "  # noqa: S608
                f"md5(t::text)), '')) FROM {connection.ops.quote_name(table)} t"
                for table in tables
            ),
            tables,
        )
        return {table: (count, digest) for table, count, digest in cursor.fetchall()}


REFUSED = {400, 401, 403, 404, 405, 409}
#: Callers without a session, whom a page sends to log in.
NO_SESSION = {"automation", "vendor_automation", "anonymous"}


def logins_refresh(state: State) -> None:
    """Each person logged in at the provider just now (signing asks for a login of the last five
    minutes, and the module runs longer than that)."""
    for key in state.sessions.values():
        session = SessionStore(session_key=key)
        session["oidc_id_token"] = fresh_id_token(auth_time=time.time())
        session.save()


def caller_for(role: str, state: State) -> APIClient:
    if role == "automation":
        api = APIClient(HTTP_AUTHORIZATION=f"Bearer {state.token}")
    elif role == "vendor_automation":
        api = APIClient(HTTP_AUTHORIZATION=f"Bearer {state.vendor_token}")
    else:
        api = APIClient()
        if role != "anonymous":
            api.cookies[settings.SESSION_COOKIE_NAME] = state.sessions[role]
    api.raise_request_exception = False
    return api


@dataclass
class Outcome:
    status: int
    location: str
    changed: list[str]  # tables whose rows changed
    audited: bool
    body: Any


def call(
    api: APIClient, method: str, path: str, body: Any, *, page: bool, before: Fingerprint
) -> Outcome:
    """Make the call in a savepoint, note what it changed since ``before``, and roll it back."""
    events = before["audit_auditevent"][0]
    with transaction.atomic():
        send = getattr(api, method.lower())
        if page:
            response = send(path, body)
        else:
            response = send(path, body, format="json") if body is not None else send(path)
        try:
            after = fingerprint()
            audited = AuditEvent.objects.count() > events
        except Exception:  # noqa: BLE001 - the call broke the transaction (a 500)
            after, audited = {}, False
        transaction.set_rollback(True)
    changed = sorted(table for table in before if before[table] != after.get(table))
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return Outcome(
        response.status_code, response.get("Location", ""), changed, audited, content[:300]
    )


# --- The matrix ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "route"), sorted(SPEC), ids=[f"{m} {r}" for m, r in sorted(SPEC)]
)
def test_authorization_matrix(state: State, method: str, route: str) -> None:
    page = route in PAGES_BY_ROUTE
    path = target_path(route, state)
    body = PAGE_BODIES.get(route, {}) if page else api_body(method, route, state)
    expected = statuses(SPEC[method, route])
    logins_refresh(state)
    before = fingerprint()  # each call is rolled back, so every caller starts from this
    wrong = []
    for role in ROLES:
        got = call(caller_for(role, state), method, path, body, page=page, before=before)
        to_login = got.status == 302 and got.location.startswith(reverse(settings.LOGIN_URL))
        refused = got.status in REFUSED or to_login
        if got.status != expected[role]:
            wrong.append(f"{role}: expected {expected[role]}, got {got.status} {got.body!r}")
        elif page and role in NO_SESSION and got.status == 302 and not to_login:
            wrong.append(f"{role}: sent to {got.location}, not to log in")
        elif refused and got.changed:
            wrong.append(f"{role}: refused ({got.status}) but changed {got.changed}")
        elif method != "GET" and not refused and (method, route) not in NOT_AUDITED:
            if got.changed and not got.audited:
                wrong.append(f"{role}: changed {got.changed} without an audit event")
            if not page and not got.audited:
                wrong.append(f"{role}: an allowed write ({got.status}) wrote no audit event")
            if page and route in PAGE_BODIES and not got.changed and got.status == 302:
                wrong.append(f"{role}: the form was accepted ({got.status}) but changed nothing")
    assert wrong == [], f"{method} {path}:\n" + "\n".join(wrong)


# --- What the lists leave out --------------------------------------------------------------------


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content[:500]
    return list(response.json()["results"])


@pytest.mark.parametrize(
    ("persona", "sees_grant"),
    [
        ("kommune_admin", True),
        ("kommune_reader", True),
        ("vendor_admin", True),
        ("vendor_developer", True),
        ("other_kommune_admin", False),
        ("other_vendor_admin", False),
    ],
)
def test_grant_list_shows_only_ones_own_grants(
    api_client: APIClient, state: State, persona: str, sees_grant: bool
) -> None:
    api_client.force_authenticate(state.people[persona])

    rows = results(api_client.get(reverse("grant-list")))

    if sees_grant:
        assert str(state.grant.pk) in {row["id"] for row in rows}
    else:
        assert rows == []


def test_audit_trail_of_a_kommune_is_hidden_from_another_kommune(
    api_client: APIClient, state: State
) -> None:
    kommune = state.world.kommune.orgnr
    assert AuditEvent.objects.filter(organisation_orgnr=kommune).exists()

    api_client.force_authenticate(state.people["other_kommune_admin"])
    outsider = results(api_client.get(reverse("audit-event-list")))
    assert [row for row in outsider if row["organisation"] == kommune] == []

    api_client.force_authenticate(state.people["nhn_auditor"])
    auditor = results(api_client.get(reverse("audit-event-list")))
    assert any(row["organisation"] == kommune for row in auditor)
