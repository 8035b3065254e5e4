"""Open311 GeoReport v2 (here Kota Makassar's server): only a simulator so far, in ``.simulator``;
the adapter is to be written from ``docs/open311-api.md``."""
