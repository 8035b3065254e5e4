"""Suara Arek (Kota Malang's complaint app): only a simulator so far, in ``.simulator``; the
adapter is to be written from ``docs/suara-arek-api.md``."""
