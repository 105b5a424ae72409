"""Moving what an older release kept outside the store into it.

Releases before the audit outbox moved into the store kept the audit trail in
``<data dir>/audit.db``. At start-up its records are imported into the store, once: the file
is renamed afterwards (kept, not deleted, as a backup of what was moved), and importing the
same records again adds nothing (record ids are unique).
"""

from __future__ import annotations

import logging
from pathlib import Path

from agent_runtime.store.base import Store
from telemetry import LEGACY_AUDIT_FILENAME, read_legacy_audit_file

__all__ = ["import_legacy_audit"]

_log = logging.getLogger(__name__)

IMPORTED_SUFFIX = ".imported"


async def import_legacy_audit(store: Store, data_dir: Path) -> int:
    """Import ``data_dir``'s audit file, if there is one; how many records were new."""
    path = data_dir / LEGACY_AUDIT_FILENAME
    if not path.is_file():
        return 0
    records = read_legacy_audit_file(path)
    added = await store.import_audit(records) if records else 0
    path.rename(path.with_name(path.name + IMPORTED_SUFFIX))
    _log.info("moved %d audit records from %s into the store", added, path.name)
    return added
