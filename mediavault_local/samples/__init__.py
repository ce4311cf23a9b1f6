"""The sample site: post pages served on loopback with small, real, generated media.

Used by ``make demo`` and by the integration / end-to-end tests; nothing here touches the
internet. ``python -m mediavault_local.samples`` serves it in the foreground.
"""

from .media import big_media, big_media_name, generate_media
from .site import SAMPLE_POSTS, RequestRecord, SamplePost, SampleSite

__all__ = [
    "SAMPLE_POSTS",
    "RequestRecord",
    "SamplePost",
    "SampleSite",
    "big_media",
    "big_media_name",
    "generate_media",
]
