"""The kinds of notification, and who hears of each (the callers choose the roles).

Adding a kind: an entry here, and its two templates, ``templates/emails/<kind>.subject.txt``
(one line) and ``templates/emails/<kind>.txt`` (the text), which read the notice's ``params``
and are worded in the reader's language (``{% translate %}``; bokmål in ``locale/nb``).
``tests/notifications/test_kinds.py`` renders every kind in both languages.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Kind:
    #: What the list of notifications calls it.
    label: Promise


KINDS: dict[str, Kind] = {
    # Kommune admins: an order waits for their approval.
    "request_waiting": Kind(_("An order waits for your approval")),
    # Vendor admins: a kommune's order for their client waits for their consent.
    "consent_waiting": Kind(_("An order waits for your consent")),
    # Vendor admins: a kommune admin approved or rejected items of their order.
    "request_decided": Kind(_("A kommune decided on your order")),
    # Vendor admins: waiting items were decided by the rules (a service opened, a delegation).
    "items_decided": Kind(_("Waiting items were decided")),
    # Vendor admins: setting up a client's access failed.
    "provisioning_failed": Kind(_("Setting up access failed")),
    # NHN operators: a provisioning job failed.
    "job_failed": Kind(_("A provisioning job failed")),
    # Vendor admins: a key reaches the key lifetime soon (30 and 7 days ahead).
    "key_expiring": Kind(_("A key must be rotated")),
    # Vendor admins: a key reached its limit and is no longer accepted.
    "key_expired": Kind(_("A key is no longer accepted")),
    # Vendor admins: NHN suspended the vendor, or lifted the suspension.
    "vendor_suspended": Kind(_("Your organisation is suspended")),
    "vendor_suspension_lifted": Kind(_("The suspension is lifted")),
    # NHN operators: the reconciler healed a difference.
    "reconciler_healed": Kind(_("The reconciler healed differences")),
    # Kommune admins: a vendor's access must be confirmed again soon (30 and 7 days ahead).
    "recertification_due": Kind(_("Access must be confirmed again")),
    # Vendor admins: a kommune did not confirm their access again, so it lapsed.
    "recertification_lapsed": Kind(_("Access lapsed without confirmation")),
}
