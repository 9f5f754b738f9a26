"""Modality worklist: one Scheduled Procedure Step per imaging appointment, and what devices
did with it (worklist queries, MPPS)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from dicomnet.models import LinkedPatientField
from patients.models import Appointment, Patient, Practice, PracticeManager
from patients.names import normalise_name


class ProcedureModality(models.Model):
    """Editable mapping from a procedure code to the modality its images come from."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    procedure_code = models.CharField(_("procedure code"), max_length=20)
    modality = models.CharField(_("modality"), max_length=16, help_text="IO, PX, CT, DX…")
    description = models.CharField(max_length=200, blank=True)
    mount_template = models.ForeignKey(
        "dicomnet.MountTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("mount template"),
    )
    expected_images = models.PositiveSmallIntegerField(_("expected images"), null=True, blank=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("procedure modality")
        verbose_name_plural = _("procedure modalities")
        constraints = [
            models.UniqueConstraint(fields=["practice", "procedure_code"], name="uniq_proc_code")
        ]
        ordering = ["procedure_code"]

    def __str__(self) -> str:
        return f"{self.procedure_code} → {self.modality}"


class OperatoryStation(models.Model):
    """Which imaging device (and so which scheduled station AE title) serves an operatory."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    operatory = models.CharField(_("operatory"), max_length=50)
    device = models.ForeignKey(
        "dicomnet.DicomServer", on_delete=models.CASCADE, related_name="operatories"
    )

    objects = PracticeManager()

    class Meta:
        verbose_name = _("operatory station")
        verbose_name_plural = _("operatory stations")
        constraints = [
            models.UniqueConstraint(fields=["practice", "operatory"], name="uniq_operatory")
        ]
        ordering = ["operatory"]

    def __str__(self) -> str:
        return f"{self.operatory} → {self.device.ae_title}"


class WorklistItem(models.Model):
    """A Scheduled Procedure Step (PS3.4 Annex K) for one imaging appointment."""

    class Status(models.TextChoices):
        SCHEDULED = "SCHEDULED", _("Scheduled")
        IN_PROGRESS = "IN_PROGRESS", _("In progress")
        COMPLETED = "COMPLETED", _("Completed")
        DISCONTINUED = "DISCONTINUED", _("Discontinued")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="worklist")
    appointment = models.OneToOneField(
        Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="worklist_item"
    )
    # Attribute ``linked_patient_id``: ``patient_id`` is the DICOM PatientID below, as on
    # DicomStudy.
    patient = LinkedPatientField(
        Patient,
        on_delete=models.CASCADE,
        related_name="worklist_items",
        db_column="linked_patient_id",
    )
    accession_number = models.CharField(_("accession number"), max_length=16)
    requested_procedure_id = models.CharField(_("requested procedure ID"), max_length=16)
    scheduled_procedure_step_id = models.CharField(_("scheduled step ID"), max_length=16)
    study_instance_uid = models.CharField(_("Study Instance UID"), max_length=64)
    modality = models.CharField(_("modality"), max_length=16)
    scheduled_station_ae_title = models.CharField(
        _("scheduled station AE title"), max_length=16, blank=True
    )
    scheduled_start = models.DateTimeField(_("scheduled start"))
    step_description = models.CharField(_("step description"), max_length=64, blank=True)
    requested_procedure_code = models.CharField(max_length=16, blank=True)
    performing_physician = models.CharField(
        _("performing dentist"), max_length=64, blank=True, help_text="DICOM PN: Family^Given"
    )
    # Demographics as sent to devices (DICOM PN "Family^Given"), copied from the patient.
    patient_name = models.CharField(max_length=200)
    patient_id = models.CharField(max_length=64)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=1, blank=True)
    # normalise_name(patient_name): accent- and case-insensitive matching of PatientName;
    # byte-wise on every database (patients/bytewise.py).
    patient_name_key = models.CharField(max_length=220, db_index=True, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    # The "fetched by the device" step: set when a worklist query first returns the item.
    first_fetched_at = models.DateTimeField(null=True, blank=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True)
    fetched_by = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("worklist item")
        verbose_name_plural = _("worklist items")
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "accession_number"], name="uniq_accession_number"
            ),
            models.UniqueConstraint(fields=["practice", "study_instance_uid"], name="uniq_wl_uid"),
        ]
        indexes = [
            models.Index(fields=["practice", "scheduled_start"]),
            models.Index(fields=["practice", "scheduled_station_ae_title", "scheduled_start"]),
        ]
        ordering = ["scheduled_start"]

    def __str__(self) -> str:
        return f"{self.accession_number} {self.patient_name} {self.scheduled_start:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        self.patient_name_key = normalise_name(self.patient_name)
        super().save(*args, **kwargs)


class WorklistQuery(models.Model):
    """One MWL C-FIND from a device: who asked, when, what, and how many items it got."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(
        "dicomnet.DicomServer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    calling_ae = models.CharField(max_length=16)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    query = models.JSONField(default=dict, help_text="the identifier, as DICOM JSON")
    result_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=40, blank=True, help_text="final status: success…")
    duration_ms = models.FloatField(default=0)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("worklist query")
        verbose_name_plural = _("worklist queries")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.calling_ae}: {self.result_count} item(s)"


class PerformedProcedureStep(models.Model):
    """An MPPS instance a device created (N-CREATE) and updated (N-SET)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "IN PROGRESS", _("In progress")
        COMPLETED = "COMPLETED", _("Completed")
        DISCONTINUED = "DISCONTINUED", _("Discontinued")

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    sop_instance_uid = models.CharField(max_length=64)
    worklist_item = models.ForeignKey(
        WorklistItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="mpps"
    )
    calling_ae = models.CharField(max_length=16)
    status = models.CharField(max_length=12, choices=Status.choices)
    attributes = models.JSONField(default=dict, help_text="latest attributes, as DICOM JSON")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PracticeManager()

    class Meta:
        verbose_name = _("performed procedure step")
        verbose_name_plural = _("performed procedure steps")
        constraints = [
            models.UniqueConstraint(fields=["practice", "sop_instance_uid"], name="uniq_mpps_uid")
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"MPPS {self.sop_instance_uid} {self.status}"
