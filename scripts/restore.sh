#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into the database named by MUTUALAID_DATABASE_URL,
# replacing what it holds. Stop the app processes and the scheduler first.
#
#   scripts/restore.sh --yes BACKUP_FILE
#
# PostgreSQL (a .dump): pg_restore --clean --if-exists in one transaction, into an existing
# database (create an empty one with `createdb` if it was lost): all of it or nothing.
# SQLite (a .sqlite3): SQLite's backup API copies the file over the database (made if missing).
# Then run `mutualaid db upgrade` if the backup comes from an older release.
set -euo pipefail

if [[ "${1:-}" != "--yes" || -z "${2:-}" ]]; then
  echo "usage: scripts/restore.sh --yes BACKUP_FILE   (replaces the database's contents)" >&2
  exit 2
fi
backup="$2"
url="${MUTUALAID_DATABASE_URL:-}"
if [[ -z "$url" && -n "${MUTUALAID_INSTANCE_PATH:-}" ]]; then
  # As the app does: unset, the database is the SQLite file in the instance folder.
  url="sqlite:///$(realpath -m "$MUTUALAID_INSTANCE_PATH")/mutualaid.db"
fi
if [[ -z "$url" ]]; then
  echo "restore.sh: set MUTUALAID_DATABASE_URL (or MUTUALAID_INSTANCE_PATH, for its SQLite file)" \
       "to the database to restore into" >&2
  exit 2
fi
if [[ ! -f "$backup" ]]; then
  echo "restore.sh: no backup file $backup" >&2
  exit 1
fi
python="${MUTUALAID_PYTHON:-python3}"

case "$url" in
  postgresql*|postgres:*)
    libpq_url="postgresql://${url#*://}"
    pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
      --exit-on-error --dbname="$libpq_url" "$backup"
    ;;
  sqlite:///*)
    db_path="${url#sqlite:///}"
    mkdir -p "$(dirname "$db_path")"
    "$python" - "$backup" "$db_path" <<'PY'
import sqlite3
import sys

source = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
if source.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
    sys.exit("restore.sh: the backup fails integrity_check; nothing restored")
target = sqlite3.connect(sys.argv[2], timeout=30)
with target:
    source.backup(target)  # replaces every page, under the database's write lock
target.close()
source.close()
PY
    ;;
  *)
    echo "restore.sh: cannot restore into ${url%%:*}: (PostgreSQL or SQLite only)" >&2
    exit 2
    ;;
esac
echo "restored $backup"
