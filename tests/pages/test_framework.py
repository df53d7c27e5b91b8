"""What every organisation page shares: who it acts for, 404 for outsiders, the menu, lists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django import forms
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils.safestring import mark_safe

from orders.models import ItemStatus
from orders.services import delegation_revoke
from portal.navigation import _waiting as waiting_for
from tenants.models import Organisation
from tenants.pages import listing

pytestmark = pytest.mark.django_db


def test_the_start_page_of_each_kind_says_whom_the_person_acts_for(
    client: Client,
    people: dict[str, User],
    kommune: Organisation,
    vendor: Organisation,
    nhn: Organisation,
) -> None:
    for who, organisation in [
        ("kommune_admin", kommune),
        ("vendor_admin", vendor),
        ("nhn_auditor", nhn),
    ]:
        client.force_login(people[who])
        response = client.get(reverse("orders:dashboard", args=[organisation.orgnr]))
        assert response.status_code == 200
        assert response.context["acting"].organisation == organisation
        assert organisation.name in response.content.decode()


def test_an_organisation_the_person_is_not_a_member_of_is_not_found(
    client: Client, people: dict[str, User], other_kommune: Organisation, nhn: Organisation
) -> None:
    client.force_login(people["kommune_admin"])
    assert client.get(reverse("orders:dashboard", args=[other_kommune.orgnr])).status_code == 404
    assert client.get(reverse("orders:dashboard", args=["000000000"])).status_code == 404
    # NHN's staff see everything through NHN's pages, not by acting for a kommune.
    client.force_login(people["nhn_operator"])
    assert client.get(reverse("orders:dashboard", args=[other_kommune.orgnr])).status_code == 404


def test_a_logged_out_visitor_is_sent_to_log_in(client: Client, kommune: Organisation) -> None:
    response = client.get(reverse("orders:dashboard", args=[kommune.orgnr]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("oidc_authentication_init"))


def test_the_menu_counts_what_waits_for_the_kommune(
    client: Client, people: dict[str, User], world: Any
) -> None:
    delegation_revoke(delegation=world.delegation, actor=people["kommune_admin"])
    request = world.order("patient.read,episode-of-care.read")
    waiting = request.items.filter(status=ItemStatus.AWAITING_KOMMUNE).count()
    assert waiting == 2  # no delegation: the kommune decides
    assert waiting_for(world.kommune, "awaiting_kommune") == waiting
    assert waiting_for(world.other_kommune, "awaiting_kommune") == 0

    # The menu of every page of the kommune shows the count beside the approvals.
    client.force_login(people["kommune_reader"])
    approvals = reverse("orders:approvals", args=[world.kommune.orgnr])
    for page in (reverse("orders:dashboard", args=[world.kommune.orgnr]), approvals):
        html = client.get(page).content.decode()
        badge = '<span class="count">2<span class="ds-sr-only"> venter</span></span>'
        assert re.search(f'<a href="{approvals}"[^>]*>Godkjenninger {badge}</a>', html), html
    client.force_login(people["other_kommune_admin"])
    html = client.get(reverse("orders:dashboard", args=[world.other_kommune.orgnr])).content
    assert b'class="count"' not in html


class _Form(forms.Form):
    name = forms.CharField(label="Name", max_length=5)


def test_a_form_shows_each_error_beside_its_field_and_in_a_summary() -> None:
    form = _Form(data={"name": "far too long"})
    html = str(form)
    assert 'class="ds-error-summary"' in html
    assert 'href="#id_name"' in html
    assert 'id="id_name_error"' in html
    assert 'aria-describedby="id_name_error"' in html
    assert 'aria-invalid="true"' in html
    assert 'value="far too long"' in html  # what was typed is kept


def test_a_list_sorts_by_a_known_column_only_and_clamps_the_page(
    kommune: Organisation, vendor: Organisation, nhn: Organisation
) -> None:
    rows = Organisation.objects.all()
    by_name = listing(
        RequestFactory().get("/?sort=-name&page=99"),
        rows,
        sorts={"name": "name"},
        default="name",
        per_page=2,
    )
    assert by_name.sort == "-name"
    assert by_name.page_obj.number == by_name.page_obj.paginator.num_pages
    names = sorted(rows.values_list("name", flat=True), reverse=True)
    assert [
        o.name
        for o in listing(
            RequestFactory().get("/?sort=-name"),
            rows,
            sorts={"name": "name"},
            default="name",
            per_page=9,
        ).rows
    ] == names
    unknown = listing(
        RequestFactory().get("/?sort=password"), rows, sorts={"name": "name"}, default="name"
    )
    assert unknown.sort == "name"


class _Choices(forms.Form):
    one = forms.ChoiceField(
        choices=[("", "Any"), ("Groups", [("a&b", "<b>A</b> & B"), ("2", "Two")])], required=False
    )
    many = forms.MultipleChoiceField(
        choices=[("1", 'Å "quoted"'), ("<2>", mark_safe("<i>Two</i>"))],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )


def test_choice_widgets_write_their_options_escaped_with_the_chosen_ones_marked() -> None:
    html = str(_Choices(data={"one": "a&b", "many": ["<2>"]}))
    # The select: grouped options, the value and label escaped, the chosen one selected.
    assert '<option value="" >Any</option>' not in html
    assert '<option value="">Any</option>' in html
    assert '<optgroup label="Groups">' in html
    assert '<option value="a&amp;b" selected>&lt;b&gt;A&lt;/b&gt; &amp; B</option>' in html
    assert '<option value="2">Two</option>' in html
    # The checkboxes: a Designsystemet field each, labelled for its input; a label marked safe
    # is written as it is, any other escaped.
    assert (
        '<div class="ds-field"><input class="ds-input" type="checkbox" name="many" value="1"'
        ' id="id_many_0"><label class="ds-label" data-weight="regular" for="id_many_0">'
        "Å &quot;quoted&quot;</label></div>"
    ) in html
    assert (
        'name="many" value="&lt;2&gt;" id="id_many_1" checked><label class="ds-label"'
        ' data-weight="regular" for="id_many_1"><i>Two</i></label>'
    ) in html
