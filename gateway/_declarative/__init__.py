"""The declarative adapter (``adapter: declarative``): a local app described in YAML alone."""

from gateway._declarative._app import DeclarativeApp
from gateway._declarative._schema import Description

__all__ = ["DeclarativeApp", "Description"]
