"""Exceptions raised by kwsint."""


class FormatError(ValueError):
    """A file is malformed: the message names the file, the field and what was expected."""


class CheckpointError(FormatError):
    """A training checkpoint is refused: unsafe to load, incomplete, wrongly shaped or not finite."""


class BackendError(ValueError):
    """A backend was asked for that is not compiled in or cannot run on this CPU."""


class ShortInputWarning(UserWarning):
    """An input is shorter than one window of the model: the detector ran no step on it, so it cannot detect
    anything there."""

    def __init__(self, name: str, frames: int, window_frames: int):
        super().__init__(f"{name}: {frames} frames, shorter than one window of {window_frames} frames: no step ran, "
                         "nothing can be detected in it")
