"""The words of the operations alerts (dicomnet/alerts.py evaluates them), in the reader's
language: a notice's ``params`` are {"alert": rule, "state": "firing" | "resolved",
"values": {...}}, rendered when read."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

FIRING = {
    "listener_down": lambda v: (
        _(
            "The DICOM listener has not been seen for %(seconds)d seconds: devices cannot send "
            "images."
        )
        % v
    ),
    "processing_failures": lambda v: _("%(count)d images failed to process in the last hour.") % v,
    "queue_stale": lambda v: (
        _("An image has been waiting %(minutes)d minutes to be processed: are the workers running?")
        % v
    ),
    "storage_quota": lambda v: (
        _("Storage is at %(percent)d%% of the practice's quota (%(used_gb).1f of %(quota_gb)d GB).")
        % v
    ),
    "spool_low": lambda v: (
        _(
            "The spool disk has only %(percent).1f%% free: the listener will refuse images when it "
            "is full."
        )
        % v
    ),
    "tls_expiry": lambda v: _("The DICOM TLS certificate expires in %(days)d days (%(date)s).") % v,
}
NAMES = {
    "listener_down": gettext_lazy("DICOM listener down"),
    "processing_failures": gettext_lazy("Processing failures"),
    "queue_stale": gettext_lazy("Processing stalled"),
    "storage_quota": gettext_lazy("Storage quota"),
    "spool_low": gettext_lazy("Spool disk low"),
    "tls_expiry": gettext_lazy("TLS certificate expiry"),
}


def alert_text(params: dict[str, Any]) -> str:
    rule = params.get("alert", "")
    values = params.get("values", {})
    if params.get("state") == "resolved":
        return _("Resolved: %(alert)s.") % {"alert": NAMES.get(rule, rule)}
    words = FIRING.get(rule)
    try:
        return words(values) if words else str(rule)
    except (KeyError, TypeError, ValueError):
        return str(NAMES.get(rule, rule))
