"""Mounts: the layouts dentists read intra-oral series in (templates, their slots) and each
study's mount, its placements and every change made to it. Imported by dicomnet.models."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from patients.models import Appointment, Practice, PracticeManager


class MountTemplate(models.Model):
    """A layout: FMX 18, four bitewings, … Shared by every practice, editable in the admin."""

    key = models.SlugField(_("key"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    columns = models.PositiveSmallIntegerField(_("grid columns"), default=4)
    # Free mounts grow a slot for each image past the last.
    grows = models.BooleanField(_("adds slots as needed"), default=False)
    # A study without an appointment gets the template whose slot count equals its image
    # count, among those marked here.
    pick_by_count = models.BooleanField(_("chosen by image count"), default=False)
    sort = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort", "name"]
        verbose_name = _("mount template")
        verbose_name_plural = _("mount templates")

    def __str__(self) -> str:
        return self.name


class MountSlot(models.Model):
    class View(models.TextChoices):
        PERIAPICAL = "periapical", _("Periapical")
        BITEWING = "bitewing", _("Bitewing")
        OCCLUSAL = "occlusal", _("Occlusal")
        PHOTO = "photo", _("Photo")
        ANY = "any", _("Any")

    template = models.ForeignKey(MountTemplate, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveSmallIntegerField(_("position"))
    row = models.PositiveSmallIntegerField(_("row"), default=1)
    column = models.PositiveSmallIntegerField(_("column"), default=1)
    view = models.CharField(_("expected view"), max_length=12, choices=View.choices)
    teeth = models.JSONField(_("teeth (FDI)"), default=list, blank=True)
    rotation = models.PositiveSmallIntegerField(
        _("rotation"), default=0, choices=[(0, "0°"), (90, "90°"), (180, "180°"), (270, "270°")]
    )

    class Meta:
        ordering = ["template", "position"]
        constraints = [
            models.UniqueConstraint(fields=["template", "position"], name="uniq_slot_position")
        ]

    def __str__(self) -> str:
        return f"{self.template.name} #{self.position}"


class Mount(models.Model):
    """The layout of one study's images, or of the appointment whose study is to come."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey(MountTemplate, on_delete=models.PROTECT, related_name="+")
    study = models.OneToOneField(
        "dicomnet.DicomStudy", null=True, blank=True, on_delete=models.CASCADE, related_name="mount"
    )
    appointment = models.OneToOneField(
        Appointment, null=True, blank=True, on_delete=models.SET_NULL, related_name="mount"
    )
    # The number of images the procedure code books (for "7/18 images").
    expected_images = models.PositiveSmallIntegerField(null=True, blank=True)
    # Set by the first change a person makes: automatic placement then leaves it alone.
    edited = models.BooleanField(default=False)
    # Free mounts: slots added past the template's own.
    extra_slots = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PracticeManager()

    def __str__(self) -> str:
        return f"{self.template.name} ({self.study_id or self.appointment_id})"


class MountPlacement(models.Model):
    """An image in a slot, as the clinician wants it shown."""

    mount = models.ForeignKey(Mount, on_delete=models.CASCADE, related_name="placements")
    position = models.PositiveSmallIntegerField()
    instance = models.ForeignKey(
        "dicomnet.DicomInstance", on_delete=models.CASCADE, related_name="placements"
    )
    rotation = models.PositiveSmallIntegerField(default=0)
    flipped = models.BooleanField(default=False)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["mount", "position"], name="uniq_mount_position"),
            models.UniqueConstraint(fields=["mount", "instance"], name="uniq_mount_instance"),
        ]

    def __str__(self) -> str:
        return f"{self.mount_id} #{self.position}: {self.instance_id}"


class MountChange(models.Model):
    """One change to a mount: automatic placements (no user) and every clinician's edit."""

    class Action(models.TextChoices):
        PLACE = "place", _("Placed")
        MOVE = "move", _("Moved")
        SWAP = "swap", _("Swapped")
        ROTATE = "rotate", _("Rotated")
        FLIP = "flip", _("Flipped")
        REMOVE = "remove", _("Taken out")
        TEMPLATE = "template", _("Template changed")

    mount = models.ForeignKey(Mount, on_delete=models.CASCADE, related_name="changes")
    instance = models.ForeignKey(
        "dicomnet.DicomInstance", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    from_position = models.PositiveSmallIntegerField(null=True)
    to_position = models.PositiveSmallIntegerField(null=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.instance_id}"
