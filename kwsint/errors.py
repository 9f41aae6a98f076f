"""Exceptions raised by kwsint."""


class FormatError(ValueError):
    """A file is malformed: the message names the file, the field and what was expected."""


class CheckpointError(FormatError):
    """A training checkpoint is refused: unsafe to load, incomplete, wrongly shaped or not finite."""


class BackendError(ValueError):
    """A backend was asked for that is not compiled in or cannot run on this CPU."""
