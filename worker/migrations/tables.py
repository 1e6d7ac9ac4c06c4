"""Every table the migrations create, on one metadata (``Base.metadata``).

The records' models live beside the code that owns them (the image records in
:mod:`worker.db.models`, the metadefs', the image cache's); importing this module loads all of
them, so Alembic's environment and the schema test compare the whole schema, never a part.
"""

from __future__ import annotations

from worker.cache import records as _cache_tables  # noqa: F401  (their metadata)
from worker.db.metadefs import models as _metadef_tables  # noqa: F401  (their metadata)
from worker.db.models import Base

__all__ = ["Base"]
