"""Lapor Hendi (Kota Semarang): the built-in local-app adapter; its simulator is in ``.simulator``."""

from lapor_gateway_adapters.lapor_hendi._adapter import LaporHendiApp

__all__ = ["LaporHendiApp"]
