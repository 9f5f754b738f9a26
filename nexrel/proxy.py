"""The client's address behind the TLS proxy (deploy/nginx/nexrel.conf), for django-axes's
lockout and so for the audit trail's ``address`` (``patients.audit.request_address``).

nginx appends the address of whoever connected to it to X-Forwarded-For
(``$proxy_add_x_forwarded_for``): the last entry is the only one no client can write, since
anything before it came in with the request. django-ipware's ``proxy_count`` can't say
"the last entry": with one proxy it wants two entries and answers None for the usual one,
then takes the first of two, which is the client's own. So settings.py names this function
(``AXES_CLIENT_IP_CALLABLE``) when ``NEXREL_BEHIND_TLS_PROXY`` is on.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest


def forwarded_client_address(request: HttpRequest) -> str:
    """The last X-Forwarded-For entry if it is an IP address, else the socket's address."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return request.META.get("REMOTE_ADDR", "")
