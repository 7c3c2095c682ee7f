"""Storage foundation: engines (.engine), schema (.models), migrations (.migrate).

Repositories import from here; nothing above the repository layer should.
"""

from p2sp.server.db.engine import Database, DatabaseUnavailable
from p2sp.server.db.models import Base

__all__ = ["Base", "Database", "DatabaseUnavailable"]
