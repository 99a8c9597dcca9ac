"""The error an importer raises when a whole file cannot be read (as opposed to one bad row)."""


class FileReadError(Exception):
    """The file cannot be read at all: wrong format, no header, broken zip. Says why in Chinese."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
