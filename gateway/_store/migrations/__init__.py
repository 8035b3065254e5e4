"""Alembic revision scripts of the store (``versions/``), run by ``gateway/_store/_migrations.py``.

Shipped inside the package, so users need no alembic.ini and no env.py: the runner builds its
Alembic configuration in code."""
