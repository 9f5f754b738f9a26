"""The practice (tenant), its users, patients, appointments and in-app notifications."""

from __future__ import annotations

from typing import Self

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.names import normalise_name


class PracticeQuerySet(models.QuerySet):
    """Rows of a practice-owned model. Every read scoped to a practice starts here."""

    def for_practice(self, practice: Practice | int | None) -> Self:
        """The rows of ``practice`` (a Practice or its id); none for None (a user without one)."""
        if practice is None:
            return self.none()
        return self.filter(practice_id=practice if isinstance(practice, int) else practice.pk)


# A practice-owned model declares ``objects = PracticeManager()``.
PracticeManager = models.Manager.from_queryset(PracticeQuerySet)


class Practice(models.Model):
    name = models.CharField(max_length=200)
    ae_title = models.CharField(
        _("called AE title"),
        max_length=16,
        unique=True,
        help_text=_("The AE title devices call to reach this practice."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A login. Every user belongs to one practice; superusers may have none."""

    practice = models.ForeignKey(
        Practice, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")
        OTHER = "O", _("Other")
        UNKNOWN = "", _("Unknown")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="patients")
    chart_number = models.CharField(_("chart number"), max_length=64)
    family_name = models.CharField(_("family name"), max_length=100)
    given_name = models.CharField(_("given name"), max_length=100)
    birth_date = models.DateField(_("date of birth"), null=True, blank=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True)
    health_card_number = models.CharField(max_length=32, blank=True)
    # Normalised "family given" (no accents, no case, particles expanded) for matching.
    name_key = models.CharField(max_length=220, db_index=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PracticeManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice", "chart_number"], name="uniq_chart_number")
        ]
        ordering = ["family_name", "given_name"]

    def __str__(self) -> str:
        return f"{self.given_name} {self.family_name} ({self.chart_number})"

    def save(self, *args, **kwargs) -> None:
        self.name_key = normalise_name(f"{self.family_name}^{self.given_name}")
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class Appointment(models.Model):
    class Status(models.TextChoices):
        BOOKED = "BOOKED", _("Booked")
        CONFIRMED = "CONFIRMED", _("Confirmed")
        ARRIVED = "ARRIVED", _("Arrived")
        COMPLETED = "COMPLETED", _("Completed")
        CANCELLED = "CANCELLED", _("Cancelled")
        NO_SHOW = "NO_SHOW", _("No show")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="appointments")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="appointments")
    start = models.DateTimeField()
    end = models.DateTimeField()
    operatory = models.CharField(max_length=50, blank=True)
    procedure_code = models.CharField(max_length=20, blank=True)
    procedure_description = models.CharField(max_length=200, blank=True)
    needs_imaging = models.BooleanField(default=False)
    provider = models.CharField(_("dentist"), max_length=100, blank=True)
    # Where an imported appointment came from ("<AE title>:<accession number>"), so a
    # re-import updates it instead of adding a duplicate.
    external_ref = models.CharField(max_length=100, blank=True, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.BOOKED)

    objects = PracticeManager()

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["practice", "start"])]

    def __str__(self) -> str:
        return f"{self.patient} {self.start:%Y-%m-%d %H:%M} {self.procedure_description}"


class Notification(models.Model):
    """In-app notice, one per (study), updated as more images arrive."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="notifications")
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.CASCADE)
    study = models.OneToOneField(
        "dicomnet.DicomStudy", null=True, blank=True, on_delete=models.CASCADE
    )
    message = models.CharField(max_length=300)
    count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = PracticeManager()

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.message


class AccessLog(models.Model):
    """Who looked at which patient's images (Law 25 audit trail)."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE)
    user = models.ForeignKey(User, null=True, on_delete=models.SET_NULL)
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=50)
    # Long enough for a DICOMweb path of three UIDs ("wado:studies/…/series/…/instances/…").
    object_ref = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = PracticeManager()

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.user} {self.action} {self.object_ref}"


class ApiToken(models.Model):
    """A bearer token of a user for DICOMweb (``Authorization: Bearer nxr_…``).

    Only its SHA-256 and its first characters (to recognise it in lists) are stored: the
    token itself is shown once, when created (``patients.tokens``). It acts as its user, in
    the user's practice, until revoked or expired."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, help_text=_("What uses this token."))
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(
        _("expires"), null=True, blank=True, help_text=_("Empty: until revoked.")
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
