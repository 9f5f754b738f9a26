"""The practice (tenant), its users, patients, appointments and in-app notifications."""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from patients.health_cards import format_ramq_number, normalise_ramq_number, validate_ramq_number
from patients.names import display_person_name, normalise_name
from patients.roles import CUSTOM_PERMISSIONS


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
    tooth_notation = models.CharField(
        _("tooth numbering"),
        max_length=10,
        choices=[("FDI", _("FDI (ISO 3950)")), ("UNIVERSAL", _("Universal (1–32, A–T)"))],
        default="FDI",
    )
    # Retention (issue 10 §5, dicomnet/retention.py): a patient's studies are kept this many
    # years after their last visit; unset keeps them for good. It may not be less than the
    # legal minimum the practice states (its professional order's rule).
    retention_years = models.PositiveSmallIntegerField(
        _("keep images (years after the last visit)"),
        null=True,
        blank=True,
        help_text=_("Empty: images are kept for good. manage.py apply_retention applies it."),
    )
    retention_legal_minimum_years = models.PositiveSmallIntegerField(
        _("legal minimum (years)"),
        default=5,
        help_text=_("The shortest time the practice must keep a record after the last visit."),
    )
    # Operations alerts (dicomnet/alerts.py) warn the practice admins near this; unset: none.
    storage_quota_gb = models.PositiveIntegerField(_("storage quota (GB)"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("practice")
        verbose_name_plural = _("practices")
        # The roles' custom permissions (patients/roles.py), on the model every role shares.
        permissions = CUSTOM_PERMISSIONS

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.retention_years is not None and (
            self.retention_years < self.retention_legal_minimum_years
        ):
            raise ValidationError(
                {
                    "retention_years": _("At least the legal minimum: %(years)d years.")
                    % {"years": self.retention_legal_minimum_years}
                }
            )


class User(AbstractUser):
    """A login. Every user belongs to one practice; superusers may have none."""

    practice = models.ForeignKey(
        Practice, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    # Off by default: a notice by email names a patient, so each person asks for it.
    email_notifications = models.BooleanField(
        _("email me the notifications"),
        default=False,
        help_text=_("New X-rays and studies to review, sent to the address above."),
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
    # Quebec's RAMQ health-card number: 4 letters and 8 digits, typed with spaces or not,
    # stored without.
    health_card_number = models.CharField(
        _("health card number (RAMQ)"),
        max_length=16,
        blank=True,
        validators=[validate_ramq_number],
        help_text=_("4 letters and 8 digits, e.g. COTZ 8803 1412."),
    )
    # Normalised "family given" (no accents, no case, particles expanded) for matching;
    # compared byte by byte on every database (patients/bytewise.py).
    name_key = models.CharField(max_length=220, db_index=True, editable=False)
    # The same, given name first: the patient search narrows on an index range of either.
    given_first_key = models.CharField(max_length=220, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints = [
            models.UniqueConstraint(fields=["practice", "chart_number"], name="uniq_chart_number")
        ]
        indexes = [
            models.Index(fields=["practice", "name_key"], name="patient_name_key"),
            models.Index(fields=["practice", "given_first_key"], name="patient_given_first_key"),
            models.Index(fields=["practice", "birth_date"], name="patient_birth_date"),
            models.Index(fields=["practice", "health_card_number"], name="patient_health_card"),
        ]
        ordering = ["name_key", "chart_number"]  # folded: "Côté" before "Cyr" (bytewise.py)

    def __str__(self) -> str:
        return f"{self.given_name} {self.family_name} ({self.chart_number})"

    def save(self, *args, **kwargs) -> None:
        self.fill_keys()
        self.health_card_number = normalise_ramq_number(self.health_card_number)
        super().save(*args, **kwargs)

    def fill_keys(self) -> None:
        """The folded names; ``bulk_create`` callers call it themselves."""
        self.name_key = normalise_name(f"{self.family_name}^{self.given_name}")
        self.given_first_key = normalise_name(f"{self.given_name}^{self.family_name}")

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def health_card_display(self) -> str:
        return format_ramq_number(self.health_card_number)

    def age_on(self, day: dt.date) -> int | None:
        """Whole years on ``day`` (a birthday on 29 February counts from 1 March)."""
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


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
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        ordering = ["start"]
        indexes = [models.Index(fields=["practice", "start"])]

    def __str__(self) -> str:
        return f"{self.patient} {self.start:%Y-%m-%d %H:%M} {self.procedure_description}"


class Notification(models.Model):
    """In-app notice, one per (study), updated as more images arrive.

    Read or unread is each person's (``NotificationRead``): one person's click leaves the
    notice in the others' bells. More images delete its read marks: new for everyone again.
    """

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="notifications")
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.CASCADE)
    study = models.OneToOneField(
        "dicomnet.DicomStudy", null=True, blank=True, on_delete=models.CASCADE
    )
    # In English, for the admin and its search; ``text`` renders ``params`` for the reader.
    message = models.CharField(max_length=300)
    # What ``text`` says: {"dicom_name": PN, "needs_review": bool, "station": {"taken_on":
    # AE, "scheduled_on": AE}}; empty for notices written before (``message`` is shown).
    params = models.JSONField(default=dict, blank=True)
    count = models.PositiveIntegerField(default=0)
    # An operations alert (dicomnet/alerts.py): for the practice admins' bell only, with
    # params {"alert": rule, "state": "firing" | "resolved", "values": {...}}.
    for_admins = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.message

    @property
    def text(self) -> str:
        """The notice in the active language, the patient's name as people read it."""
        if not self.params:
            return self.message
        if "alert" in self.params:
            from patients.alert_texts import alert_text  # the words of each rule

            return alert_text(self.params)
        count = self.count
        if self.patient is not None:
            who = self.patient.full_name
        else:
            who = display_person_name(self.params.get("dicom_name"))
        if who:
            text = ngettext(
                "%(count)d new X-ray for %(who)s", "%(count)d new X-rays for %(who)s", count
            ) % {"count": count, "who": who}
        else:
            text = ngettext(
                "%(count)d new X-ray for an unidentified patient",
                "%(count)d new X-rays for an unidentified patient",
                count,
            ) % {"count": count}
        if self.params.get("needs_review"):
            text += " " + gettext("(needs review)")
        station = self.params.get("station")
        if station:
            text += (
                " "
                + gettext("Taken on device %(taken_on)s, but scheduled on %(scheduled_on)s.")
                % station
            )
        return text


class NotificationRead(models.Model):
    """One person has read one notice (the bell, the API or the patient's chart)."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notification_reads")
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("notification read")
        verbose_name_plural = _("notifications read")
        # Written only by patients.services for the reader: no permission for any role.
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["notification", "user"], name="uniq_notification_read")
        ]

    def __str__(self) -> str:
        return f"{self.user} read {self.notification_id} at {self.read_at:%Y-%m-%d %H:%M}"


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
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.user} {self.action} {self.object_ref}"


class AuditEventQuerySet(models.QuerySet):
    """Rows are only ever added (patients.audit.record): no bulk change or removal."""

    def update(self, **kwargs: Any) -> int:
        raise AuditTrailIsAppendOnly("audit events are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditTrailIsAppendOnly("audit events are never deleted")

    def bulk_create(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise AuditTrailIsAppendOnly("audit events are added one by one, chained")


class AuditTrailIsAppendOnly(Exception):
    pass


class AuditEvent(models.Model):
    """One entry of the audit trail (issue 10 §3), in the terms of DICOM's audit messages
    (PS3.15 A.5): the event (110100…110114), its type, action and outcome; who (a user, or
    an AE title) and from where; which patient and study.

    Append-only: the model refuses to change or delete a row, PostgreSQL does too (a
    trigger, migration 0013), and each row's ``hash`` chains it to the row before it
    (``manage.py verify_audit`` finds a row changed, deleted or inserted behind the app's
    back). References are plain values, not foreign keys: deleting a user, a patient or a
    practice never touches the trail."""

    class Action(models.TextChoices):
        CREATE = "C", _("Create")
        READ = "R", _("Read")
        UPDATE = "U", _("Update")
        DELETE = "D", _("Delete")
        EXECUTE = "E", _("Execute")

    class Outcome(models.IntegerChoices):
        SUCCESS = 0, _("Success")
        MINOR_FAILURE = 4, _("Minor failure")
        SERIOUS_FAILURE = 8, _("Serious failure")
        MAJOR_FAILURE = 12, _("Major failure")

    at = models.DateTimeField(_("when"), db_index=True)
    event_id = models.CharField(_("event"), max_length=6)  # DCM code, e.g. "110110"
    event_type = models.CharField(_("event type"), max_length=16, blank=True)  # DCM code
    action = models.CharField(_("action"), max_length=1, choices=Action.choices)
    outcome = models.PositiveSmallIntegerField(_("outcome"), choices=Outcome.choices)
    outcome_text = models.CharField(_("outcome description"), max_length=500, blank=True)
    # Nexrel's own name of what happened ("view_study", "c_store", "login_failed").
    what = models.CharField(_("what"), max_length=60)
    practice_id = models.BigIntegerField(_("practice"), null=True, blank=True)
    user_id = models.BigIntegerField(_("user"), null=True, blank=True)
    username = models.CharField(_("user name"), max_length=150, blank=True)
    ae_title = models.CharField(_("AE title"), max_length=16, blank=True)
    address = models.CharField(_("network address"), max_length=64, blank=True)
    patient_id = models.BigIntegerField(_("patient"), null=True, blank=True)
    patient_chart = models.CharField(_("chart number"), max_length=64, blank=True)
    patient_name = models.CharField(_("patient name"), max_length=220, blank=True)
    study_uid = models.CharField(_("Study Instance UID"), max_length=64, blank=True)
    object_ref = models.CharField(_("object"), max_length=255, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = models.Manager.from_queryset(AuditEventQuerySet)()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit trail")
        ordering = ["-id"]
        default_permissions = ("view",)
        permissions = [("use_audit_trail", "Can search and export the audit trail")]
        indexes = [
            models.Index(fields=["practice_id", "at"], name="audit_practice_at"),
            models.Index(fields=["practice_id", "patient_id", "at"], name="audit_patient_at"),
            models.Index(fields=["practice_id", "user_id", "at"], name="audit_user_at"),
            models.Index(fields=["practice_id", "ae_title", "at"], name="audit_ae_at"),
        ]

    def __str__(self) -> str:
        who = self.username or self.ae_title or self.address or "-"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.event_id} {self.what} {who}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditTrailIsAppendOnly("audit events are never updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditTrailIsAppendOnly("audit events are never deleted")

    @property
    def what_label(self) -> str:
        from patients.audit import what_label  # the words live with the vocabulary

        return what_label(self.what)


class AuditForwarding(models.Model):
    """How far a syslog collector has the audit trail (patients/syslog.py): the last event
    sent to it. A mark, not part of the trail, so it may change."""

    destination = models.CharField(max_length=300, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.destination} up to event {self.last_event_id}"


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
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class ConfidentialityIncident(models.Model):
    """The register of confidentiality incidents R-22.1 and Law 25 require (issue 10 §3): what
    information, how, when it happened and when it was learned, how many persons, the
    assessment of the risk of serious injury, the notices to the Commission d'accès à
    l'information and to the persons, and the measures taken. Kept by the practice admins in
    Django admin; every change is in the audit trail."""

    class Risk(models.TextChoices):
        UNDETERMINED = "undetermined", _("Not yet assessed")
        NO = "no", _("No risk of serious injury")
        YES = "yes", _("Risk of serious injury")

    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="incidents")
    information = models.TextField(_("personal information concerned"))
    circumstances = models.TextField(_("circumstances of the incident"))
    occurred_on = models.DateField(_("date or period of the incident"))
    occurred_until = models.DateField(_("end of the period"), null=True, blank=True)
    learned_on = models.DateField(_("date the practice learned of it"))
    persons_affected = models.PositiveIntegerField(
        _("number of persons concerned"), help_text=_("An estimate if not known exactly.")
    )
    risk = models.CharField(
        _("risk of serious injury"), max_length=12, choices=Risk.choices, default=Risk.UNDETERMINED
    )
    risk_assessment = models.TextField(
        _("assessment of the risk"),
        blank=True,
        help_text=_("The sensitivity of the information, its possible misuse, the consequences."),
    )
    cai_notified_on = models.DateField(
        _("Commission d'accès à l'information notified on"), null=True, blank=True
    )
    persons_notified_on = models.DateField(_("persons notified on"), null=True, blank=True)
    notice_details = models.TextField(_("notices given (to whom, how)"), blank=True)
    measures = models.TextField(_("measures taken to reduce the risk and prevent recurrence"))
    recorded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("confidentiality incident")
        verbose_name_plural = _("register of confidentiality incidents")
        ordering = ["-occurred_on", "-id"]

    def __str__(self) -> str:
        return f"{self.occurred_on:%Y-%m-%d} {self.information[:60]}"

    def clean(self) -> None:
        super().clean()
        errors = {}
        if self.occurred_until and self.occurred_until < self.occurred_on:
            errors["occurred_until"] = _("The end of the period is before its start.")
        if self.learned_on and self.occurred_on and self.learned_on < self.occurred_on:
            errors["learned_on"] = _("The practice cannot learn of it before it happened.")
        if self.risk == self.Risk.YES and not self.cai_notified_on:
            errors["cai_notified_on"] = _(
                "A risk of serious injury must be reported to the Commission promptly."
            )
        if errors:
            raise ValidationError(errors)
