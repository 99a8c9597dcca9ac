"""Online backup and restore of the database, one file per backup: ``flask backup | restore``.

SQLite: the backup is itself a database, copied with SQLite's backup API (a consistent snapshot
while the app runs). PostgreSQL: the backup is a ``pg_dump --format=custom`` archive, restored in
one transaction. The search indexes are not backed up: they are rebuilt from the database after a
restore. Restore with the app stopped: running workers would keep their old connections (SQLite)
and in-memory vectors.
"""

from kb.backup.archive import BackupError, BackupInfo, CampaignCount, count_campaigns
from kb.backup.commands import backup_command, backup_database, restore_command, restore_database

__all__ = [
    "BackupError",
    "BackupInfo",
    "CampaignCount",
    "backup_command",
    "backup_database",
    "count_campaigns",
    "restore_command",
    "restore_database",
]
