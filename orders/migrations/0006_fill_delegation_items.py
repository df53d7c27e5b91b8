"""Each service an existing delegation names becomes a *read* item, without service codes.

The old delegations said nothing about access. Turning them into read and write wherever the
catalogue lets some system type write would widen what the kommune agreed to; read only is the
least-privilege reading. A kommune that meant write delegates it again. Grants already approved
stay as they are (they name the delegation they rest on).
"""

from django.db import migrations


def forward(apps, schema_editor):
    Delegation = apps.get_model("orders", "Delegation")
    DelegationItem = apps.get_model("orders", "DelegationItem")
    Through = Delegation.services.through
    DelegationItem.objects.bulk_create(
        (
            DelegationItem(delegation_id=row.delegation_id, service_id=row.service_id, access="read")
            for row in Through.objects.all().iterator()
        ),
        batch_size=1000,
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [("orders", "0005_add_delegation_items_and_waiting_statuses")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
