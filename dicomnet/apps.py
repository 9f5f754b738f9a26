from django.apps import AppConfig


class DicomnetConfig(AppConfig):
    name = "dicomnet"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dicomnet.net import reactor

        # Every pynetdicom association of the process: the listener's, and the SCUs that
        # query, retrieve and forward (a fast peer's answer was taken by the wrong thread).
        reactor.install_pause_guard()
