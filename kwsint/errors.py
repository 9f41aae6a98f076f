"""Exceptions raised by kwsint."""


class FormatError(ValueError):
    """A model blob or data file is malformed: the message names the file, the field and what was expected."""


class BackendError(ValueError):
    """A backend was asked for that is not compiled in or cannot run on this CPU."""
