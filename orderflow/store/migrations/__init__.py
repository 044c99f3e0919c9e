"""The order store's Alembic migrations, run by ``orderflow.store.migrate`` (never by import).

A change of schema is a new script in ``versions/`` (``alembic revision`` with ``-c`` pointing at a
config whose ``script_location`` is ``orderflow.store:migrations``), never a dropped table.
"""
