"""Storage: SQLAlchemy 2 async; SQLite file by default, PostgreSQL by URL; per-part migrations."""

from .db import Base, Database
from .migrate import Migration, migration

__all__ = ["Base", "Database", "Migration", "migration"]
