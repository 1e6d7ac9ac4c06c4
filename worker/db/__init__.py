"""The records: Glance's tables on SQLAlchemy 2.0 asyncio (SQLite embedded, PostgreSQL served)."""
