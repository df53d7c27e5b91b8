"""Load the kommune register: the 357 kommuner of 2024 (tenants/data/kommuner-2024.csv)."""

import csv
from pathlib import Path

from django.db import migrations

CSV_PATH = Path(__file__).resolve().parent.parent / "data" / "kommuner-2024.csv"


def forward(apps, schema_editor):
    Kommune = apps.get_model("tenants", "Kommune")
    with CSV_PATH.open(encoding="utf-8") as handle:
        rows = [
            Kommune(
                number=row["kommunenummer"],
                name=row["navn"],
                county_number=row["fylkesnummer"],
                county_name=row["fylke"],
            )
            for row in csv.DictReader(handle)
        ]
    Kommune.objects.bulk_create(rows, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
