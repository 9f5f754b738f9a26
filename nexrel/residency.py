"""Where the images may be kept (issue 10 §5): Quebec's R-22.1 and Law 25 expect health
information to stay in Canada, encrypted at rest. Read by nexrel/settings.py, which refuses
to start with anything else."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

CANADIAN_REGIONS = frozenset({"ca-central-1", "ca-west-1"})
# SSE-S3 and SSE-KMS (ServerSideEncryption values of S3's PutObject).
SERVER_SIDE_ENCRYPTION = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})


def check_s3_residency(region: str, sse: str) -> None:
    """ImproperlyConfigured unless ``region`` is a Canadian AWS region and ``sse`` a
    server-side encryption S3 applies."""
    if region not in CANADIAN_REGIONS:
        raise ImproperlyConfigured(
            f"NEXREL_S3_REGION={region!r} is outside Canada: images must stay in "
            f"{' or '.join(sorted(CANADIAN_REGIONS))} (R-22.1, Law 25)"
        )
    if sse not in SERVER_SIDE_ENCRYPTION:
        raise ImproperlyConfigured(
            f"NEXREL_S3_SSE={sse!r}: images must be encrypted at rest, with SSE-S3 (AES256) "
            "or SSE-KMS (aws:kms)"
        )
