"""Errors a user can cause; the CLI turns each into one line and an exit code."""


class VigilError(Exception):
    """Base of every error that is the user's input, not a bug."""

    exit_code = 1


class ConfigError(VigilError):
    """A configuration value is wrong; message names the key (`items`: every problem, loc and msg)."""

    exit_code = 2

    def __init__(self, message: str, items: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.items = items or [{"loc": message.partition(": ")[0] if ": " in message else "", "msg": message}]


class ModelError(VigilError):
    """The model file is missing, not TFLite, or matches no decoder."""

    exit_code = 3


class SourceError(VigilError):
    """The video source cannot be opened or read."""

    exit_code = 4


class OutputClosed(Exception):
    """The reader of an output went away (a closed pipe, e.g. `vigil run --jsonl - | head`): that
    output ends as at the end of its source, not as a failure."""
