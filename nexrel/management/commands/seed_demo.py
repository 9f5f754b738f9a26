from django.core.management.base import BaseCommand

from nexrel.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Load the demo practice, patients, appointments and devices (idempotent)."

    def handle(self, *args, **options) -> None:
        practice = seed_demo()
        self.stdout.write(
            f"Demo practice {practice.name!r} (called AE {practice.ae_title}). "
            f"Login: clinician / {DEMO_PASSWORD}"
        )
