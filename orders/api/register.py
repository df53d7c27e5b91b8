"""The EPJ transition register in the API: ``/api/v1/epj-register/`` with the page's filters, one
kommune's row by orgnr, and ``export/`` (CSV, streamed). NHN staff read every kommune; a
kommune's members read its own row; anyone else reads none (an empty list, 404 for a row).

A kommune admin changes the row through ``PUT /api/v1/organizations/{orgnr}/epj/`` (EPJ, switch
and ``uses_vkp``), the same service the kommune's EHR switch page calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from orders.forms.oversight import RegisterFilterForm, field_errors
from orders.transition import (
    DEFAULT_SORT,
    SORTS,
    Epj,
    RegisterRow,
    csv_records,
    register_kommuner,
    register_rows,
    rows_sorted,
)
from portal.api import Pagination
from portal.exports import csv_streaming_response
from tenants.models import Product
from tenants.transition import EpjPath


class EpjRefSerializer(serializers.Serializer[Epj]):
    """A product as ``organizations`` names it (``ProductRef``): its id, name, type, Epic flag and
    the vendor's orgnr."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    system_type = serializers.ChoiceField(choices=Product.SystemType.choices)
    is_epic = serializers.BooleanField()
    vendor = serializers.CharField(source="vendor_orgnr")


class EpjSwitchRefSerializer(serializers.Serializer[RegisterRow]):
    product = EpjRefSerializer(source="switch_to")
    date = serializers.DateField(source="switch_date")


class EpjRegisterRowSerializer(serializers.Serializer[RegisterRow]):
    orgnr = serializers.CharField()
    name = serializers.CharField()
    kommunenummer = serializers.CharField(source="number")
    fylke = serializers.CharField(source="county")
    epj_product = EpjRefSerializer(source="epj", allow_null=True)
    uses_vkp = serializers.BooleanField(
        allow_null=True, help_text="null: the kommune has not said."
    )
    epj_switch = serializers.SerializerMethodField()
    path = serializers.ChoiceField(choices=EpjPath.choices, help_text="NHN's recommended path.")
    path_label = serializers.CharField(source="path.label")
    at_risk = serializers.SerializerMethodField(
        help_text="Uses VKP and switches while a service it relies on is not active for it; "
        "null when that does not apply (no VKP, or no switch planned)."
    )
    relied_on = serializers.SerializerMethodField(help_text="Service codes.")
    relied_on_assumed = serializers.SerializerMethodField(
        help_text="The kommune has asked for nothing: it relies on every service its new EPJ can "
        "use."
    )
    not_active = serializers.SerializerMethodField(help_text="Service codes.")
    opens_after_switch = serializers.SerializerMethodField(
        help_text="Service codes of those not active that open in production after the switch."
    )

    @extend_schema_field(EpjSwitchRefSerializer(allow_null=True))
    def get_epj_switch(self, row: RegisterRow) -> dict[str, Any] | None:
        return None if row.switch_to is None else SWITCH_REF.to_representation(row)

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_at_risk(self, row: RegisterRow) -> bool | None:
        return row.at_risk if row.risk is not None else None

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_relied_on_assumed(self, row: RegisterRow) -> bool | None:
        return row.risk.assumed if row.risk is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_relied_on(self, row: RegisterRow) -> list[str]:
        return row.codes("relied_on")

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_not_active(self, row: RegisterRow) -> list[str]:
        return row.codes("not_active")

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_opens_after_switch(self, row: RegisterRow) -> list[str]:
        return row.codes("opens_after_switch")


#: One instance renders each row's switch (no serializer per row).
SWITCH_REF = EpjSwitchRefSerializer()

FILTERS = [
    OpenApiParameter("q", str, description="Name, kommune number or orgnr."),
    OpenApiParameter("county", str, description="The county's number (fylkesnummer)."),
    OpenApiParameter("epj", str, description="The current EPJ product's id, or `none`."),
    OpenApiParameter("path", str, enum=EpjPath.values),
    OpenApiParameter("vkp", str, enum=["yes", "no", "unknown"]),
    OpenApiParameter("risk", bool, description="Only kommuner at risk."),
    OpenApiParameter(
        "sort",
        str,
        enum=[*SORTS, *(f"-{key}" for key in SORTS)],
        description=f"Default `{DEFAULT_SORT}` (the switch date; none last).",
    ),
]


def _rows(request: Request) -> list[RegisterRow]:
    """The caller's rows, filtered and sorted as the query asks; 400 with field errors for a
    filter or sort that is not one of the choices."""
    form = RegisterFilterForm(request.query_params)
    errors = {} if form.is_valid() else field_errors(form)
    sort = request.query_params.get("sort") or DEFAULT_SORT
    if sort.removeprefix("-") not in SORTS:
        errors["sort"] = [_("Sort by one of %(keys)s.") % {"keys": ", ".join(SORTS)}]
    if errors:
        raise ValidationError(errors)
    filters = form.filters()
    rows = register_rows(register_kommuner(request.user), on=timezone.localdate())
    return rows_sorted([row for row in rows if filters.keep(row)], sort)


class CsvRenderer(BaseRenderer):
    """Lets a caller ask for ``text/csv`` (the export streams its own body); an error on the way
    is still JSON."""

    media_type = "text/csv"
    format = "csv"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode()


class EpjRegisterViewSet(viewsets.ViewSet):
    """NHN's register of kommuner's EPJ switches, with NHN's recommended path and the risk of
    losing VKP functionality. Rows are named by the kommune's orgnr."""

    lookup_field = "orgnr"
    lookup_value_regex = r"[^/]+"

    @extend_schema(parameters=FILTERS, responses=EpjRegisterRowSerializer(many=True))
    def list(self, request: Request) -> Response:
        pagination = Pagination()
        rows: Any = _rows(request)  # a list: DRF's limit-offset paging slices any sequence
        page: list[RegisterRow] = pagination.paginate_queryset(rows, request, view=self) or []
        row = EpjRegisterRowSerializer()
        return pagination.get_paginated_response([row.to_representation(r) for r in page])

    @extend_schema(responses=EpjRegisterRowSerializer)
    def retrieve(self, request: Request, orgnr: str) -> Response:
        kommuner = register_kommuner(request.user).filter(orgnr=orgnr)
        rows = register_rows(kommuner, on=timezone.localdate())
        if not rows:
            raise NotFound(_("No kommune with orgnr %(orgnr)s.") % {"orgnr": orgnr})
        return Response(EpjRegisterRowSerializer(rows[0]).data)

    @extend_schema(
        parameters=FILTERS,
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
        description="The filtered rows as CSV (UTF-8), streamed.",
    )
    @action(detail=False, methods=["get"], renderer_classes=[JSONRenderer, CsvRenderer])
    def export(self, request: Request) -> StreamingHttpResponse:
        return csv_streaming_response(
            csv_records(_rows(request)),
            filename=f"epj-register-{timezone.localdate().isoformat()}.csv",
        )
