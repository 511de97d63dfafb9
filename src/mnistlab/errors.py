"""The one exception type for user mistakes.

Anything the user can fix (a bad setting, a missing file, a corrupt download) raises
`MnistlabError` with a one-line message that names the problem and the fix. The CLI prints
that line and exits non-zero; any other exception is a bug and keeps its traceback.
"""

import re


class MnistlabError(Exception):
    """A mistake the user can fix. `exit_code` is what the CLI exits with."""

    def __init__(self, message: str, *, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def shown_url(text: str) -> str:
    """`text` (a URL, or a message naming one) with any password hidden: storage and tracking
    URLs go into messages, logs and reports."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)
