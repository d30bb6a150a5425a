"""The one base class for every error a learner may read, so that pages and the command line catch one type.

Its message is written for the learner: it says what went wrong and what to change, never names an
environment variable, and never holds a traceback.
"""


class LabError(ValueError):
    """An error whose message is fit to show a learner as it is. `detail`, when given, is for whoever runs
    the server (it may name settings and paths): the command line prints it, pages log it."""

    def __init__(self, message: str = "", detail: str | None = None):
        super().__init__(message)
        self.detail = detail


MAX_SHOWN_VALUE = 60


def shown_value(value, limit: int = MAX_SHOWN_VALUE) -> str:
    """A value as an error message quotes it: repr, cut to `limit` characters, so a 1 MB input gives a short message."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"
