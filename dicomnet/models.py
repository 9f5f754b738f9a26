"""DICOM peers and the studies, series and instances received from them."""

from __future__ import annotations

import ssl
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from dicomnet.net import tls
from patients.models import Appointment, Patient, Practice, PracticeManager, PracticeQuerySet
from patients.names import display_person_name, normalise_name
from patients.reasons import render_stored


class DeviceService(models.TextChoices):
    """What a DICOM peer may do with us, or we with it: one switch (``allow_*``) each."""

    STORE = "store", _("Storing images (C-STORE)")
    FIND = "find", _("Querying (C-FIND)")
    MOVE = "move", _("Retrieving by C-MOVE")
    GET = "get", _("Retrieving by C-GET")
    WORKLIST = "worklist", _("The modality worklist (MWL C-FIND)")
    MPPS = "mpps", _("Procedure step reports (MPPS)")


# The switch each service needs. The worklist is a C-FIND, and a device that may store
# images may report the procedure steps that made them.
SERVICE_SWITCH = {
    DeviceService.STORE: "allow_store",
    DeviceService.FIND: "allow_find",
    DeviceService.MOVE: "allow_move",
    DeviceService.GET: "allow_get",
    DeviceService.WORKLIST: "allow_find",
    DeviceService.MPPS: "allow_store",
}


def validate_fingerprint(value: str) -> None:
    if value.strip() and not tls.is_fingerprint(value):
        raise ValidationError(_("A SHA-256 fingerprint is 64 hexadecimal digits (colons allowed)."))


def validate_subject(value: str) -> None:
    if value.strip():
        try:
            tls.parse_subject(value)
        except ValueError:
            raise ValidationError(
                _("Give the subject as RFC 4514 text, for example CN=pano-1,O=Clinique.")
            ) from None


def validate_ca_certificates(value: str) -> None:
    if value.strip():
        try:
            ssl.create_default_context(cadata=value)
        except (ssl.SSLError, ValueError):
            raise ValidationError(_("These are not PEM certificates.")) from None


class DicomServerQuerySet(PracticeQuerySet):
    def allowing(self, *services: DeviceService) -> DicomServerQuerySet:
        """Active peers with which any of ``services`` is allowed."""
        switches = models.Q()
        for service in services:
            switches |= models.Q(**{SERVICE_SWITCH[service]: True})
        return self.filter(switches, is_active=True)


class DicomServer(models.Model):
    """A DICOM peer of the practice: an X-ray device, a PACS or a viewing workstation."""

    class VendorProfile(models.TextChoices):
        GENERIC = "generic", "Generic"
        CARESTREAM = "carestream", "Carestream"
        PLANMECA = "planmeca", "Planmeca"
        SIRONA = "sirona", "Dentsply Sirona"
        VATECH = "vatech", "Vatech"
        ORTHANC = "orthanc", "Orthanc"

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="dicom_servers")
    name = models.CharField(_("name"), max_length=100)
    ae_title = models.CharField(_("AE title"), max_length=16)
    host = models.CharField(_("host"), max_length=255, default="127.0.0.1")
    port = models.PositiveIntegerField(default=104)
    is_active = models.BooleanField(_("active"), default=True)
    check_host = models.BooleanField(
        _("check host"),
        default=False,
        help_text=_("Only accept associations from this host's address."),
    )
    allow_store = models.BooleanField(_("allow store"), default=True)
    allow_find = models.BooleanField(_("allow find"), default=False)
    allow_move = models.BooleanField(_("allow move"), default=False)
    allow_get = models.BooleanField(_("allow get"), default=False)
    vendor_profile = models.CharField(
        _("vendor profile"),
        max_length=20,
        choices=VendorProfile.choices,
        default=VendorProfile.GENERIC,
    )
    # Device profile for the modality worklist.
    mwl_character_set = models.CharField(
        _("worklist character set"),
        max_length=16,
        choices=[("ISO_IR 192", "UTF-8 (ISO_IR 192)"), ("ISO_IR 100", "Latin-1 (ISO_IR 100)")],
        default="ISO_IR 192",
        help_text=_("Latin-1 for devices that cannot read UTF-8."),
    )
    mwl_own_station_only = models.BooleanField(
        _("worklist: own station only"),
        default=False,
        help_text=_(
            "For devices that do not send their station AE title: answer only with items "
            "scheduled on this device's operatories."
        ),
    )
    # TLS (docs/security.md): how we call it, and which certificate it must present.
    use_tls = models.BooleanField(
        _("call over TLS"),
        default=False,
        help_text=_("Nexrel calls this device over TLS and verifies its certificate."),
    )
    tls_ca_certificates = models.TextField(
        _("TLS CA certificates"),
        blank=True,
        validators=[validate_ca_certificates],
        help_text=_(
            "PEM certificates of the authority that signed the device's certificate. Empty: "
            "the clinic's CA (DICOM_TLS_CA), else the system's authorities."
        ),
    )
    tls_certificate_subject = models.CharField(
        _("pinned certificate subject"),
        max_length=500,
        blank=True,
        validators=[validate_subject],
        help_text=_("The device's certificate must have this subject, e.g. CN=pano-1,O=Clinique."),
    )
    tls_certificate_sha256 = models.CharField(
        _("pinned certificate SHA-256"),
        max_length=95,
        blank=True,
        validators=[validate_fingerprint],
        help_text=_("The device's certificate must have this SHA-256 fingerprint."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = models.Manager.from_queryset(DicomServerQuerySet)()

    class Meta:
        verbose_name = _("DICOM device")
        verbose_name_plural = _("DICOM devices")
        constraints = [
            models.UniqueConstraint(fields=["practice", "ae_title"], name="uniq_server_ae")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"

    def clean(self) -> None:
        self.tls_certificate_sha256 = tls.normalise_fingerprint(self.tls_certificate_sha256)
        self.tls_certificate_subject = self.tls_certificate_subject.strip()

    def refusal(self, service: DeviceService | None = None) -> str | None:
        """Why this peer may not take part in ``service`` (or at all, for None); None if it may.

        The one wording of every refusal: SCP handlers log it, SCUs raise it, the API and
        the pages show it, in the active language.
        """
        names = {"name": self.name, "ae": self.ae_title}
        if not self.is_active:
            return _("DICOM device “%(name)s” (%(ae)s) is deactivated.") % names
        if service is not None and not getattr(self, SERVICE_SWITCH[service]):
            switch = cast(models.Field, self._meta.get_field(SERVICE_SWITCH[service])).verbose_name
            return _(
                "%(service)s is not allowed for DICOM device “%(name)s” (%(ae)s): "
                "%(switch)s is off."
            ) % {**names, "service": DeviceService(service).label, "switch": switch}
        return None


class LinkedPatientField(models.ForeignKey):
    """Foreign key ``patient`` whose id attribute is ``linked_patient_id``.

    The seed schema names both the DICOM PatientID (``patient_id``) and the linked chart
    (``patient``); a plain ForeignKey would claim ``patient_id`` for itself.
    """

    def get_attname(self) -> str:
        return f"linked_{self.name}_id"


class DicomStudy(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING", _("Pending")
        PROCESSED = "PROCESSED", _("Processed")
        NEEDS_REVIEW = "NEEDS_REVIEW", _("Needs review")
        ERROR = "ERROR", _("Error")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=200, blank=True)
    # normalise_name(patient_name): accent- and case-insensitive PatientName queries (C-FIND)
    # narrow on an index range of this key. Byte-wise on every database (patients/bytewise.py).
    patient_name_key = models.CharField(max_length=220, blank=True, editable=False)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)
    accession_number = models.CharField(max_length=16, blank=True, db_index=True)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.TimeField(null=True, blank=True)
    study_description = models.CharField(max_length=200, blank=True)
    modality = models.CharField(max_length=64, blank=True)
    series_count = models.PositiveIntegerField(default=0)
    instance_count = models.PositiveIntegerField(default=0)
    server = models.ForeignKey(
        DicomServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="studies"
    )
    patient = LinkedPatientField(
        Patient,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="studies",
        db_column="linked_patient_id",
    )
    appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="studies"
    )
    # Set when the study was linked exactly, through a worklist item's UID or accession number.
    worklist_item = models.ForeignKey(
        "worklist.WorklistItem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="studies",
    )
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.PENDING)
    status_reason = models.CharField(max_length=500, blank=True)
    # The reason as a patients.reasons code and its parameters: shown in the reader's language.
    status_reason_params = models.JSONField(default=dict, blank=True)
    match_candidates = models.JSONField(default=list, blank=True)
    # Set when a person linked the patient by hand: matching then leaves it alone.
    manually_linked = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("DICOM study")
        verbose_name_plural = _("DICOM studies")
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "study_instance_uid"], name="uniq_study_uid"
            )
        ]
        indexes = [
            models.Index(fields=["practice", "status"]),
            models.Index(fields=["practice", "patient_name_key"]),
            models.Index(fields=["practice", "patient_id"]),
            models.Index(fields=["practice", "study_date"]),
        ]
        ordering = ["-study_date", "-created_at"]

    def __str__(self) -> str:
        return f"{display_person_name(self.patient_name) or '?'} {self.study_date} {self.modality}"

    def save(self, *args, **kwargs) -> None:
        self.patient_name_key = normalise_name(self.patient_name.split("=")[0])
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "patient_name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "patient_name_key"}
        super().save(*args, **kwargs)

    @property
    def reason_text(self) -> str:
        """Why it is linked (or needs review), in the active language."""
        return render_stored(self.status_reason_params, self.status_reason)

    @property
    def station_mismatch(self) -> dict | None:
        """{"taken_on", "scheduled_on"} when the images came from a device other than the
        station the appointment's worklist item was scheduled on; None otherwise.

        The device is each instance's calling AE (or its registered device's AE title, for
        an upload); the station is the item's ScheduledStationAETitle. Uses the instances
        already prefetched, if they are.
        """
        item = self.worklist_item
        if item is None and self.appointment is not None:
            item = getattr(self.appointment, "worklist_item", None)  # reverse one-to-one
        scheduled = (getattr(item, "scheduled_station_ae_title", "") or "").strip()
        if not scheduled:
            return None
        taken = set()
        for instance in self.instances.all():
            ae = (instance.calling_ae or "").strip()
            if not ae and instance.server_id is not None and instance.server is not None:
                ae = instance.server.ae_title.strip()
            if ae:
                taken.add(ae)
        others = sorted(taken - {scheduled})
        if not others:
            return None
        return {"taken_on": ", ".join(others), "scheduled_on": scheduled}


class DicomSeries(models.Model):
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE)
    study = models.ForeignKey(DicomStudy, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    series_number = models.IntegerField(null=True, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    series_description = models.CharField(max_length=200, blank=True)
    body_part_examined = models.CharField(max_length=64, blank=True)
    instance_count = models.PositiveIntegerField(default=0)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("DICOM series")
        verbose_name_plural = _("DICOM series")
        constraints = [
            models.UniqueConstraint(fields=["study", "series_instance_uid"], name="uniq_series")
        ]
        ordering = ["series_number", "id"]

    def __str__(self) -> str:
        return f"{self.modality} #{self.series_number} {self.series_description}"


class DicomInstanceQuerySet(PracticeQuerySet):
    def latest_versions(self) -> DicomInstanceQuerySet:
        """The latest version of each SOP instance: one SOP received in three transfer
        syntaxes (or re-sent with other bytes) is one image, not three."""
        newer = DicomInstance.objects.filter(
            practice_id=models.OuterRef("practice_id"),
            sop_instance_uid=models.OuterRef("sop_instance_uid"),
            version__gt=models.OuterRef("version"),
        )
        return self.filter(~models.Exists(newer))


class DicomInstance(models.Model):
    """One received object. Created by the listener once its bytes are durable."""

    class State(models.TextChoices):
        RECEIVED = "RECEIVED", _("Received")
        PROCESSED = "PROCESSED", _("Processed")
        ERROR = "ERROR", _("Error")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE)
    study = models.ForeignKey(
        DicomStudy, null=True, blank=True, on_delete=models.CASCADE, related_name="instances"
    )
    series = models.ForeignKey(
        DicomSeries, null=True, blank=True, on_delete=models.CASCADE, related_name="instances"
    )
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    # Same SOP Instance UID with different bytes is kept as a new version, flagged.
    version = models.PositiveIntegerField(default=1)
    conflict = models.BooleanField(
        default=False, help_text=_("Same SOP Instance UID as an earlier object, different bytes.")
    )
    spool_path = models.CharField(max_length=500, blank=True)
    storage_key = models.CharField(max_length=500, blank=True)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    frames = models.PositiveIntegerField(default=1)
    preview_key = models.CharField(max_length=500, blank=True)
    thumbnail_key = models.CharField(max_length=500, blank=True)
    preview_error = models.CharField(max_length=500, blank=True)
    analysis = models.JSONField(default=dict, blank=True)
    # Teeth, region, laterality, positioner, lossy, calibration (dicomnet.dental.attributes).
    dental = models.JSONField(default=dict, blank=True)
    calling_ae = models.CharField(max_length=16, blank=True)
    peer_address = models.CharField(max_length=64, blank=True)
    server = models.ForeignKey(DicomServer, null=True, blank=True, on_delete=models.SET_NULL)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    error = models.CharField(max_length=1000, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Set while a pipeline run holds the instance (see pipeline.claim).
    claimed_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager.from_queryset(DicomInstanceQuerySet)()

    class Meta:
        verbose_name = _("DICOM instance")
        verbose_name_plural = _("DICOM instances")
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "sop_instance_uid", "version"], name="uniq_sop_version"
            )
        ]
        indexes = [
            models.Index(fields=["state"]),
            models.Index(fields=["practice", "sop_instance_uid"]),
        ]
        ordering = ["instance_number", "id"]

    def __str__(self) -> str:
        return f"{self.sop_instance_uid} v{self.version}"

    @property
    def has_preview(self) -> bool:
        return bool(self.preview_key)


class RetrieveJob(models.Model):
    """An import of studies from a remote DICOM system (C-MOVE or C-GET), run as a task."""

    class Method(models.TextChoices):
        MOVE = "move", "C-MOVE"
        GET = "get", "C-GET"

    class Status(models.TextChoices):
        PENDING = "PENDING", _("Pending")
        RUNNING = "RUNNING", _("Running")
        COMPLETED = "COMPLETED", _("Completed")
        WARNING = "WARNING", _("Completed with warnings or failures")
        FAILED = "FAILED", _("Failed")
        CANCELLED = "CANCELLED", _("Cancelled")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    server = models.ForeignKey(DicomServer, on_delete=models.CASCADE, related_name="jobs")
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        "patients.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    method = models.CharField(max_length=4, choices=Method.choices, default=Method.MOVE)
    study_instance_uids = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Sub-operation counts as the remote reports them (PS3.4 C.4.2.1.6).
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    warning = models.PositiveIntegerField(default=0)
    remaining = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="what went wrong, in plain words")
    cancel_requested = models.BooleanField(default=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["practice", "status"])]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {len(self.study_instance_uids)} studies: {self.status}"


class ApiKey(models.Model):
    """A key for machine callers (Orthanc's webhook). Only its SHA-256 is stored."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True, help_text="first characters, shown")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class OrthancNotification(models.Model):
    """One 'instance stored' call from Orthanc: fetched once, retried on failure."""

    class Status(models.TextChoices):
        PENDING = "PENDING", _("Pending")
        FETCHED = "FETCHED", _("Fetched")
        FAILED = "FAILED", _("Failed")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    server = models.ForeignKey(
        DicomServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    orthanc_instance_id = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    instance = models.ForeignKey(
        DicomInstance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("Orthanc notification")
        verbose_name_plural = _("Orthanc notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "orthanc_instance_id"], name="uniq_orthanc_instance"
            )
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Orthanc {self.orthanc_instance_id}: {self.status}"


class ImageAnnotation(models.Model):
    """A measurement, a note or the manual calibration a user drew on one frame of an image
    in the viewer (docs/viewer.md). ``data`` is what the viewer needs to draw it again: the
    tool's points in patient coordinates (mm), its cached value and, for a calibration, the
    known length and the resulting mm per pixel."""

    class Kind(models.TextChoices):
        LENGTH = "length", _("Length")
        ANGLE = "angle", _("Angle")
        ARROW = "arrow", _("Text note")
        CALIBRATION = "calibration", _("Calibration")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    instance = models.ForeignKey(
        DicomInstance, on_delete=models.CASCADE, related_name="annotations"
    )
    frame = models.PositiveIntegerField(default=1)
    author = models.ForeignKey(
        "patients.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    label = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("image annotation")
        verbose_name_plural = _("image annotations")
        indexes = [models.Index(fields=["practice", "instance"])]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.instance.sop_instance_uid}"


class StudyAssignment(models.Model):
    """A person assigned a study to a patient from the review queue (dicomnet.ingest.review).

    ``previous`` is the study's link before (patient, appointment, worklist item, status,
    reason, candidates, manually_linked), so undoing restores it exactly. Studies assigned in
    one click share a ``batch``, undone together."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    study = models.ForeignKey(DicomStudy, on_delete=models.CASCADE, related_name="assignments")
    batch = models.UUIDField(db_index=True)
    from_patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_patient = models.ForeignKey(Patient, null=True, on_delete=models.SET_NULL, related_name="+")
    created_patient = models.BooleanField(default=False)
    previous = models.JSONField(default=dict)
    by = models.ForeignKey("patients.User", null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        "patients.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = PracticeManager()

    class Meta:
        indexes = [models.Index(fields=["practice", "-at"])]
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"study {self.study_id} -> patient {self.to_patient_id} by {self.by_id} at {self.at}"


# The mount models live beside their logic; importing them here registers them with dicomnet.
from dicomnet.dental.models import (  # noqa: E402, F401
    Mount,
    MountChange,
    MountPlacement,
    MountSlot,
    MountTemplate,
)


class RefusedAssociation(models.Model):
    """Associations the listener refused (dicomnet.net.access), one row per called AE,
    calling AE and peer address: a misconfigured device retrying all day is one row whose
    ``count`` and ``last_seen`` grow, not millions of rows."""

    practice = models.ForeignKey(
        Practice,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("The practice the called AE names, when it names one."),
    )
    called_ae = models.CharField(_("called AE title"), max_length=16)
    calling_ae = models.CharField(_("calling AE title"), max_length=16)
    peer_address = models.CharField(_("peer address"), max_length=64)
    reason = models.CharField(_("reason"), max_length=500)
    count = models.PositiveIntegerField(_("attempts"), default=1)
    first_seen = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen = models.DateTimeField(_("last seen"), auto_now_add=True, db_index=True)

    objects = PracticeManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["called_ae", "calling_ae", "peer_address"], name="uniq_refused_peer"
            )
        ]
        ordering = ["-last_seen"]
        verbose_name = _("refused association")
        verbose_name_plural = _("refused associations")

    def __str__(self) -> str:
        return f"{self.calling_ae}@{self.peer_address} → {self.called_ae} ×{self.count}"


class OpsAlert(models.Model):
    """An operations alert (dicomnet/alerts.py): open while its condition holds, resolved
    once it clears. One open alert per rule and practice (None: the whole installation)."""

    rule = models.CharField(_("rule"), max_length=40)
    practice = models.ForeignKey(
        Practice, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # "rule:practice id" or "rule:*": unique among the open alerts (a NULL practice would
    # not be, in a unique constraint, on SQLite).
    key = models.CharField(max_length=60, editable=False)
    message = models.CharField(_("message"), max_length=300)
    values = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"))
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("operations alert")
        verbose_name_plural = _("operations alerts")
        ordering = ["-first_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(resolved_at=None), name="one_open_alert_per_rule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.key = f"{self.rule}:{self.practice_id or '*'}"
        super().save(*args, **kwargs)
