"""Notifications by email, for the people of the practice who asked for them.

Linking calls ``email_notification_on_commit`` when a study's notice becomes unread for
someone (new: for everyone; updated by more images: for those who had read it). Read state is
each person's, so is the spell: one email per person per unread spell, not one per image.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from functools import partial

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from patients.context_processors import notice_url
from patients.models import Notification, User
from patients.selectors import for_audience

log = logging.getLogger(__name__)

VIEW_NOTIFICATION = "patients.view_notification"


def recipients(notification: Notification, among: Collection[int] | None = None) -> list[User]:
    """Active users of the notice's practice who opted in, have an address, may see
    notifications (their role holds ``patients.view_notification``) and have not read it;
    only those of ``among`` (user ids) when given."""
    users = (
        User.objects.filter(
            practice_id=notification.practice_id, is_active=True, email_notifications=True
        )
        .exclude(email="")
        .exclude(notification_reads__notification=notification)
        .order_by("pk")
    )
    if among is not None:
        users = users.filter(pk__in=among)
    return [
        user
        for user in users
        if user.has_perm(VIEW_NOTIFICATION)
        and for_audience(user, Notification.objects.filter(pk=notification.pk)).exists()
    ]


def email_notification(notification_id: int, among: Collection[int] | None = None) -> int:
    """Send the notice to its recipients (``among`` them, when given), in the site's language;
    returns how many emails.

    Read again from the database: called after commit, the notice may have been read (by some
    of them) or deleted in between.
    """
    notification = Notification.objects.select_related("patient").filter(pk=notification_id).first()
    if notification is None:
        return 0
    people = recipients(notification, among)
    if not people:
        return 0
    with translation.override(settings.LANGUAGE_CODE):
        text = notification.text
        subject = _("Nexrel: %(notice)s") % {"notice": text}
        link = settings.NEXREL_SITE_URL + notice_url(notification)
        body = "\n\n".join(
            [text, link, _("You can stop these emails in your preferences in Nexrel.")]
        )
    messages = [(subject[:150], body, settings.DEFAULT_FROM_EMAIL, [user.email]) for user in people]
    sent = send_mass_mail(messages, fail_silently=False)
    log.info("notification %s emailed to %d people", notification.pk, sent)
    return sent


def email_notification_on_commit(
    notification: Notification, among: Collection[int] | None = None
) -> None:
    """Email the notice once the transaction that made it commits, to everyone it concerns or
    only ``among`` (user ids); a mail failure is logged (``robust``) and never undoes or fails
    the ingest that made the notice."""
    among = None if among is None else list(among)
    transaction.on_commit(partial(email_notification, notification.pk, among), robust=True)
