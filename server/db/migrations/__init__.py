"""Alembic migrations of the database, shipped inside the package (env.py, versions/)."""
