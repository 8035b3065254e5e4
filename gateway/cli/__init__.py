"""The ``gateway`` command."""

from gateway.cli._commands import app, main

__all__ = ["app", "main"]
