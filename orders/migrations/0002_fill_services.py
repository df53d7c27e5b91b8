"""The service catalogue from NHN's roadmap (webinar 11 Dec 2025), DESIGN.md section 3.

Each service is available in both environments from the first day of its planned quarter.
"""

import datetime

from django.db import migrations

QUARTER_START = {"Q1": (1, 1), "Q2": (4, 1), "Q3": (7, 1), "Q4": (10, 1)}

# code, FHIR resource, read by, written by, EPJ requirement, planned, bokmål name, English name,
# bokmål description, English description
SERVICES = [
    ("journaling", "Bundle (Composition document)", ["EPJ"], ["VFT"], "any", "2026 Q1",
     "Journalføring", "Journaling",
     "Journalnotater skrevet av velferdsteknologi, lest inn i EPJ.",
     "Journal notes written by welfare technology, read into the EPJ."),
    ("patient", "Patient", ["VFT"], ["EPJ"], "any", "2026 Q1",
     "Pasient", "Patient",
     "Pasientopplysninger.", "Patient information."),
    ("episode-of-care", "EpisodeOfCare", ["VFT"], ["EPJ"], "any", "2026 Q2",
     "Tjenesteforløp", "Episode of care",
     "Kommunale tjenester pasienten mottar.", "Municipal services the patient receives."),
    ("care-plan", "CarePlan", ["VFT"], ["EPJ"], "any", "2026 Q2",
     "Besøksplan", "Care plan",
     "Besøksplan.", "Visit plan (besøksplan)."),
    ("observation", "Observation", ["EPJ"], ["VFT", "DHO"], "any", "2026 Q2",
     "Målinger", "Observation",
     "Vitale målinger.", "Vital measurements."),
    ("medication-dispense", "MedicationDispense", ["EPJ"], ["VFT"], "any", "2026 Q3",
     "Legemiddelutlevering", "Medication dispense",
     "Vellykket utlevering fra medisindispenser.",
     "Successful dispensing by a medicine dispenser."),
    ("allergy-intolerance", "AllergyIntolerance", ["VFT"], ["EPJ"], "epic", "2026 Q3",
     "Allergier og intoleranser", "Allergies and intolerances",
     "Allergier og intoleranser.", "Allergies and intolerances."),
    ("condition", "Condition", ["VFT"], ["EPJ"], "epic", "2026 Q3",
     "Diagnoser", "Conditions",
     "Diagnoser (søk).", "Diagnoses (search)."),
    ("medication-statement", "MedicationStatement", ["VFT"], ["EPJ"], "epic", "2026 Q3",
     "Legemiddelliste", "Medication statement",
     "Pasientens legemiddelliste.", "The patient's medication list."),
]


def quarter_start(planned):
    year, quarter = planned.split()
    month, day = QUARTER_START[quarter]
    return datetime.date(int(year), month, day)


def forward(apps, schema_editor):
    Service = apps.get_model("orders", "Service")
    ServiceAvailability = apps.get_model("orders", "ServiceAvailability")
    for position, row in enumerate(SERVICES, start=1):
        code, fhir, read_by, write_by, epj, planned, name_nb, name_en, desc_nb, desc_en = row
        service, _ = Service.objects.update_or_create(
            code=code,
            defaults={
                "position": position,
                "fhir_resource": fhir,
                "read_scope": f"nhn:ksp/{code}.read",
                "write_scope": f"nhn:ksp/{code}.write",
                "readable_by": read_by,
                "writable_by": write_by,
                "epj_requirement": epj,
                "planned_quarter": planned,
                "name_nb": name_nb,
                "name_en": name_en,
                "description_nb": desc_nb,
                "description_en": desc_en,
            },
        )
        for environment in ("test", "production"):
            ServiceAvailability.objects.get_or_create(
                service=service,
                environment=environment,
                defaults={"available_from": quarter_start(planned)},
            )


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
