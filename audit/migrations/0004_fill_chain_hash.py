"""Chain the events written before the chain existed, in id order, under the head's lock."""

from django.db import migrations

from audit.chain import CONTENT, GENESIS, canonical, link

BATCH = 1000


def forward(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    ChainHead = apps.get_model("audit", "ChainHead")
    ChainHead.objects.get_or_create(pk=1)
    ChainHead.objects.select_for_update().get(pk=1)  # writers of new events wait for this
    previous = GENESIS
    batch = []
    rows = AuditEvent.objects.order_by("id").values_list("id", *CONTENT)
    for event_id, *content in rows.iterator(chunk_size=BATCH):
        previous = link(previous, canonical(*content))
        batch.append(AuditEvent(pk=event_id, chain_hash=previous))
        if len(batch) == BATCH:
            AuditEvent.objects.bulk_update(batch, ["chain_hash"])
            batch = []
    if batch:
        AuditEvent.objects.bulk_update(batch, ["chain_hash"])


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0003_add_chain_hash"),
    ]

    operations = [
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
