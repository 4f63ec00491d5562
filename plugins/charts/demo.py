"""Demo patients with realistic chart entries (``pfcore demo``)."""

from __future__ import annotations

import datetime as dt

from pfcore.api import User, audit, scoped_select, session, utcnow

from . import sections
from .models import ChartEntry, Encounter, Patient

PATIENTS = [
    {
        "patient": ("Maria", "Garcia", "1968-03-14", "female", "maria.garcia@demo.example.org", "+14155550111"),
        "medications": [
            {
                "name": "Lisinopril 10 mg tablet",
                "instructions": "1 tablet by mouth daily",
                "started_on": "2023-05-02",
                "status": "active",
            },
            {
                "name": "Metformin 500 mg tablet",
                "instructions": "1 tablet by mouth twice daily with meals",
                "started_on": "2022-11-20",
                "status": "active",
            },
        ],
        "problems": [
            {"name": "Essential hypertension", "code": "I10", "onset_on": "2023-05-02", "status": "active"},
            {
                "name": "Type 2 diabetes mellitus without complications",
                "code": "E11.9",
                "onset_on": "2022-11-20",
                "status": "active",
            },
        ],
        "allergies": [{"substance": "Penicillin", "reaction": "Hives", "severity": "moderate"}],
        "immunizations": [
            {"vaccine": "Influenza, seasonal, injectable", "given_on": "2025-10-08", "lot": "FL2391"},
            {"vaccine": "Tdap", "given_on": "2021-06-15", "lot": "TD7710"},
        ],
        "lab-results": [
            (
                {
                    "test": "Hemoglobin A1c",
                    "value": "6.9",
                    "unit": "%",
                    "reference_range": "4.0-5.6",
                    "collected_on": "2026-10-01",
                },
                True,
            ),
            (
                {
                    "test": "LDL cholesterol",
                    "value": "112",
                    "unit": "mg/dL",
                    "reference_range": "<100",
                    "collected_on": "2026-10-01",
                },
                False,
            ),
        ],
        "appointments": [
            {"starts_at": 21, "reason": "Diabetes follow-up", "provider": "Dr. Paul Physician"},
            {"starts_at": -54, "reason": "Annual physical", "provider": "Dr. Paul Physician"},
        ],
        "encounter": (
            -54,
            "Annual physical",
            "Feels well. No chest pain.",
            "BP 132/84, BMI 29.",
            "Hypertension, controlled. Type 2 diabetes.",
            "Continue medications. A1c in 3 months.",
        ),
    },
    {
        "patient": ("James", "Okafor", "1990-08-02", "male", "james.okafor@demo.example.org", "+14155550112"),
        "medications": [
            {
                "name": "Albuterol HFA 90 mcg inhaler",
                "instructions": "2 puffs every 4-6 hours as needed",
                "started_on": "2019-04-11",
                "status": "active",
            }
        ],
        "problems": [
            {"name": "Mild intermittent asthma", "code": "J45.20", "onset_on": "2019-04-11", "status": "active"}
        ],
        "allergies": [],
        "immunizations": [{"vaccine": "COVID-19 mRNA 2025-2026", "given_on": "2025-09-30", "lot": "CV5521"}],
        "lab-results": [],
        "appointments": [{"starts_at": 7, "reason": "Asthma check", "provider": "Nora Nurse"}],
        "encounter": None,
    },
    {
        "patient": ("Evelyn", "Chen", "1949-12-24", "female", "", "+14155550113"),
        "medications": [
            {
                "name": "Atorvastatin 20 mg tablet",
                "instructions": "1 tablet by mouth at bedtime",
                "started_on": "2018-02-01",
                "status": "active",
            }
        ],
        "problems": [
            {"name": "Hyperlipidemia", "code": "E78.5", "onset_on": "2018-02-01", "status": "active"},
            {"name": "Osteoarthritis of knee", "code": "M17.9", "onset_on": "2020-07-15", "status": "active"},
        ],
        "allergies": [{"substance": "Sulfa drugs", "reaction": "Rash", "severity": "mild"}],
        "immunizations": [{"vaccine": "Pneumococcal conjugate (PCV20)", "given_on": "2024-03-05", "lot": "PN0042"}],
        "lab-results": [
            (
                {
                    "test": "Total cholesterol",
                    "value": "188",
                    "unit": "mg/dL",
                    "reference_range": "<200",
                    "collected_on": "2026-09-12",
                },
                True,
            )
        ],
        "appointments": [],
        "encounter": None,
    },
]


def add_demo_patients(practice, admin) -> None:
    today = dt.date.today()
    physician = (
        session().scalars(scoped_select(User, practice.id).where(User.access_level == 4).order_by(User.id)).first()
        or admin
    )
    for record in PATIENTS:
        first, last, born, sex, email, phone = record["patient"]
        patient = Patient(
            practice_id=practice.id,
            first_name=first,
            last_name=last,
            sex=sex,
            email=email,
            phone=phone,
            date_of_birth=dt.date.fromisoformat(born),
            created_by_id=admin.id,
        )
        session().add(patient)
        session().flush()
        audit.record(
            "charts.patient_created",
            practice_id=practice.id,
            actor=admin,
            object_type="patient",
            object_id=patient.id,
            dimensions={"patient_id": patient.id},
            details={"demo": True},
        )
        for slug in ("medications", "problems", "allergies", "immunizations", "lab-results", "appointments"):
            spec = sections.SECTIONS[slug]
            for item in record[slug]:
                data, shared = item if isinstance(item, tuple) else (item, False)
                if slug == "appointments":
                    when = dt.datetime.combine(today + dt.timedelta(days=data["starts_at"]), dt.time(9, 30))
                    data = {**data, "starts_at": when.strftime("%Y-%m-%dT%H:%M")}
                session().add(
                    ChartEntry(
                        practice_id=practice.id,
                        patient_id=patient.id,
                        kind=spec.kind,
                        data=data,
                        shared=shared,
                        updated_by_id=admin.id,
                        occurred_at=sections.occurred_at(spec, data, practice.timezone or "UTC"),
                    )
                )
        if record["encounter"]:
            days, reason, subjective, objective, assessment, plan = record["encounter"]
            session().add(
                Encounter(
                    practice_id=practice.id,
                    patient_id=patient.id,
                    provider_id=physician.id,
                    visit_date=today + dt.timedelta(days=days),
                    reason=reason,
                    subjective=subjective,
                    objective=objective,
                    assessment=assessment,
                    plan=plan,
                    updated_at=utcnow(),
                )
            )
    session().flush()
