"""Quebec health-insurance (RAMQ) card numbers: 4 letters and 8 digits ("COTZ 8803 1412").

Stored without spaces, upper case; searched the same way.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

RAMQ_NUMBER = re.compile(r"[A-Z]{4}[0-9]{8}")


def normalise_ramq_number(text: str) -> str:
    """Upper case, spaces and hyphens dropped: "cotz 8803-1412" gives "COTZ88031412"."""
    return re.sub(r"[\s-]+", "", text or "").upper()


def looks_like_ramq_number(text: str) -> bool:
    return RAMQ_NUMBER.fullmatch(normalise_ramq_number(text)) is not None


def validate_ramq_number(value: str) -> None:
    if value and not looks_like_ramq_number(value):
        raise ValidationError(
            _("A RAMQ health card number is 4 letters and 8 digits, e.g. COTZ 8803 1412."),
            code="invalid_ramq_number",
        )


def format_ramq_number(value: str) -> str:
    """As printed on the card: "COTZ 8803 1412" (a value that is not a RAMQ number as is)."""
    number = normalise_ramq_number(value)
    if RAMQ_NUMBER.fullmatch(number) is None:
        return value
    return f"{number[:4]} {number[4:8]} {number[8:]}"
