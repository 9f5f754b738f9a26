from django.apps import AppConfig


class DicomnetConfig(AppConfig):
    name = "dicomnet"
    default_auto_field = "django.db.models.BigAutoField"
