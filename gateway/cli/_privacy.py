"""``gateway privacy ...``: what the gateway keeps of personal data (UU PDP 27/2022), and the
operator's tools for it. Each part of it lives in its own module and is registered at the end."""

from __future__ import annotations

import typer

privacy_app = typer.Typer(
    help="Personal data the gateway keeps (UU PDP): the reporter data a purpose keeps, its keys.",
    no_args_is_help=True,
)

from gateway.cli._privacy_keys import (  # noqa: E402  (kept beside their registration)
    minimise_command,
    new_key_command,
    reporter_command,
    rotate_keys_command,
)

privacy_app.command("new-key")(new_key_command)
privacy_app.command("rotate-keys")(rotate_keys_command)
privacy_app.command("minimise")(minimise_command)
privacy_app.command("reporter")(reporter_command)
