"""The one exception type users see: it names the problem and the fix."""

from __future__ import annotations


class DetectorError(Exception):
    """A problem with the user's input, raised before any long work starts.

    The CLI prints the message (no traceback) and exits with status 2.
    """
