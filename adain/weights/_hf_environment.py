"""Importing huggingface_hub so that an unusable timeout in the environment cannot break ``import adain``.

huggingface_hub reads ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` with ``int()`` when it is
imported: ``abc`` or ``1e300`` there would make ``import adain`` (and every ``adain`` command, ``--help``
included) end in a ``ValueError`` traceback. ``adain.weights`` imports this module before anything imports
huggingface_hub: the two variables are hidden for the import when they are not whole numbers
(huggingface_hub keeps its defaults) and put back at once, so that ``check_hub_environment`` refuses them in
one line naming the variable when the Hub is used. Where huggingface_hub was imported earlier, nothing changes.
"""

from __future__ import annotations

import os

HUB_TIMEOUTS = ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")


def _not_whole(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return True
    return False


_hidden = {name: os.environ.pop(name) for name in HUB_TIMEOUTS if _not_whole(os.environ.get(name, "0"))}
try:
    import huggingface_hub.constants  # noqa: F401, E402 -- imported here, with the variables hidden
finally:
    os.environ.update(_hidden)
