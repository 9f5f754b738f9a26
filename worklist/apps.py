from django.apps import AppConfig


class WorklistConfig(AppConfig):
    name = "worklist"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A signal, not a call from patients: the patients app must not import the worklist,
        # and every way an appointment is saved (calendar, admin, import, seed) must count.
        from django.db.models.signals import post_save

        from patients.models import Appointment, Patient
        from worklist import services

        def on_appointment_saved(sender, instance: Appointment, raw: bool = False, **kwargs):
            if not raw:
                services.sync_appointment(instance)
                services.sync_mount(instance)

        def on_patient_saved(sender, instance: Patient, raw: bool = False, created=False, **kw):
            if not raw and not created:
                services.refresh_demographics(instance)

        post_save.connect(on_appointment_saved, sender=Appointment, weak=False)
        post_save.connect(on_patient_saved, sender=Patient, weak=False)
