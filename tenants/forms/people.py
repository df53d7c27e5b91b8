"""Forms of the people pages (every kind of organisation)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.forms import PageForm
from tenants.models import ROLES_BY_KIND, Organisation


def role_choices(organisation: Organisation) -> list[tuple[str, str]]:
    """The roles an organisation of this kind gives."""
    return [(role.value, str(role.label)) for role in ROLES_BY_KIND[organisation.kind]]


class InviteForm(PageForm):
    email = forms.EmailField(
        label=_("E-mail address"),
        max_length=254,
        help_text=_("The address the person logs in with. The role applies from their next login."),
    )
    role = forms.ChoiceField(label=_("Role"), widget=forms.RadioSelect)

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(organisation)  # type: ignore[attr-defined]


class RoleForm(PageForm):
    role = forms.ChoiceField(label=_("Role"), widget=forms.RadioSelect)

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(organisation)  # type: ignore[attr-defined]


class PeopleFilterForm(PageForm):
    """The list's filters (a GET form): by role and by whether the person has logged in."""

    STATUSES = (
        ("", _("Everyone")),
        ("member", _("Logged in")),
        ("invited", _("Invited, not logged in yet")),
    )

    q = forms.CharField(label=_("E-mail address contains"), required=False, max_length=254)
    role = forms.ChoiceField(label=_("Role"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False, choices=STATUSES)

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [  # type: ignore[attr-defined]
            ("", _("All roles")),
            *role_choices(organisation),
        ]
