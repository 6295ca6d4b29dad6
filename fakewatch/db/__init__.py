"""The results database: tables, engine/session, queries and Alembic migrations."""
