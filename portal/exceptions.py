"""Domain errors that service functions raise; the API answers them with an HTTP status."""

from __future__ import annotations


class Conflict(Exception):
    """The request is well formed but clashes with the stored state (HTTP 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
