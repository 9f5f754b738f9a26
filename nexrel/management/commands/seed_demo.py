from django.core.management.base import BaseCommand, CommandParser

from nexrel.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Load the demo practices, patients, appointments, devices and radiographs (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-images", action="store_true", help="leave out the demo's radiographs"
        )

    def handle(self, *args, **options) -> None:
        practice = seed_demo(images=not options["no_images"])
        self.stdout.write(
            f"Demo practice {practice.name!r} (called AE {practice.ae_title}). "
            f"Login: clinician / {DEMO_PASSWORD}"
        )
