#!/usr/bin/env python
"""Patient search with 50,000 patients: server time of the patient list page and of the
search alone (patients.selectors.search_patients), p50/p95 per kind of query.

A throwaway SQLite database (``--db``, default /tmp/nexrel-bench-search.sqlite3) is migrated
and loaded with the demo practice and ``--patients`` patients (bulk_create); each query is run
3 times to warm up, then ``--reps`` times, through Django's test client (the whole view:
search, page count, study counts, template) and through the selector alone.

    .venv/bin/python bench/bench_search.py [--patients 50000] [--reps 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from stats import percentile  # noqa: E402

FAMILY = [
    "Côté",
    "Tremblay",
    "Gagnon",
    "Roy",
    "Bouchard",
    "Gauthier",
    "Morin",
    "Lavoie",
    "Fortin",
    "Gagné",
    "Ouellet",
    "Pelletier",
    "Bélanger",
    "Lévesque",
    "Bergeron",
    "Leblanc",
    "Paquette",
    "Girard",
    "Simard",
    "Boucher",
    "Saint-Pierre",
    "O'Connor",
]
GIVEN = [
    "Zoé",
    "Étienne",
    "Geneviève",
    "François",
    "Chloé",
    "Noël",
    "Hélène",
    "Jérôme",
    "Marie",
    "Jean",
    "Léa",
    "Olivier",
    "Camille",
    "Gabriel",
    "Émile",
    "Florence",
]
QUERIES = {
    "family name, no accent": "cote",
    "given + family": "zoe cote",
    "prefix of 3 letters": "tre",
    "inner word (scan)": "pierre",
    "chart number": "123456",
    "date of birth": "1980-05-17",
    "RAMQ number": "TREZ 8005 1712",
    "empty (first page)": "",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--db", default="/tmp/nexrel-bench-search.sqlite3")
    args = parser.parse_args()

    Path(args.db).unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{args.db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexrel.settings")
    os.environ.setdefault("LANGUAGE_CODE", "en")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from nexrel.demo import seed_demo
    from patients.models import Patient, User
    from patients.selectors import search_patients

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    practice = seed_demo(images=False)
    rng = random.Random(9)
    rows = []
    for i in range(args.patients):
        family, given = rng.choice(FAMILY), rng.choice(GIVEN)
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(30_000))
        p = Patient(
            practice=practice,
            chart_number=str(100_000 + i),
            family_name=family,
            given_name=given,
            birth_date=birth,
            health_card_number=f"{family[:3].upper()}{given[0].upper()}{i:08d}",
        )
        p.fill_keys()
        rows.append(p)
    rows[0].health_card_number = "TREZ80051712"  # one the RAMQ query finds
    Patient.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client = Client()
    client.force_login(User.objects.get(username="clinician"))

    print(f"{Patient.objects.count()} patients, SQLite {connection.Database.sqlite_version}")
    print("| query | found | page p50 ms | page p95 ms | search p50 ms | search p95 ms |")
    print("|---|---|---|---|---|---|")
    for label, query in QUERIES.items():
        page, alone = [], []
        for rep in range(args.reps + 3):
            t0 = time.perf_counter()
            response = client.get("/patients/", {"q": query})
            t1 = time.perf_counter()
            found = search_patients(practice, query)
            first_page = list(found[:50])
            count = found.count()
            t2 = time.perf_counter()
            assert response.status_code == 200
            if rep >= 3:
                page.append((t1 - t0) * 1000)
                alone.append((t2 - t1) * 1000)
        print(
            f"| {label} `{query}` | {count} ({len(first_page)} shown) | "
            f"{percentile(page, 50):.1f} | {percentile(page, 95):.1f} | "
            f"{percentile(alone, 50):.1f} | {percentile(alone, 95):.1f} |"
        )


if __name__ == "__main__":
    main()
