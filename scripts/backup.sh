#!/usr/bin/env bash
# Back up the mutualaid database named by MUTUALAID_DATABASE_URL (as the app reads it).
#
#   scripts/backup.sh [DEST_DIR]        # default DEST_DIR: ./backups
#
# PostgreSQL: pg_dump in custom format (-Fc), restorable with scripts/restore.sh or pg_restore,
# consistent while the app runs (one snapshot). SQLite: a page-by-page copy through SQLite's
# online backup API (python3's sqlite3), consistent while the app runs, WAL included.
# The file is written under a temporary name, checked (pg_restore --list / integrity_check),
# then renamed; the last line printed is its path. Exit code non-zero on any failure.
set -euo pipefail
umask 077  # a backup holds every member's full ID number: for its owner's eyes only

url="${MUTUALAID_DATABASE_URL:-}"
if [[ -z "$url" && -n "${MUTUALAID_INSTANCE_PATH:-}" ]]; then
  # As the app does: unset, the database is the SQLite file in the instance folder.
  url="sqlite:///$(realpath -m "$MUTUALAID_INSTANCE_PATH")/mutualaid.db"
fi
if [[ -z "$url" ]]; then
  echo "backup.sh: set MUTUALAID_DATABASE_URL (or MUTUALAID_INSTANCE_PATH, for its SQLite file)" \
       "to the database to back up" >&2
  exit 2
fi
dest_dir="${1:-backups}"
mkdir -p "$dest_dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
python="${MUTUALAID_PYTHON:-python3}"

case "$url" in
  postgresql*|postgres:*)
    # SQLAlchemy's postgresql+psycopg://... is libpq's postgresql://... without the driver.
    libpq_url="postgresql://${url#*://}"
    dest="$dest_dir/mutualaid-$stamp.dump"
    pg_dump --format=custom --no-owner --no-privileges --file="$dest.partial" \
      --dbname="$libpq_url"
    pg_restore --list "$dest.partial" >/dev/null
    ;;
  sqlite:///*)
    db_path="${url#sqlite:///}"
    if [[ ! -f "$db_path" ]]; then
      echo "backup.sh: no SQLite database at $db_path" >&2
      exit 1
    fi
    dest="$dest_dir/mutualaid-$stamp.sqlite3"
    "$python" - "$db_path" "$dest.partial" <<'PY'
import sqlite3
import sys

source = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
target = sqlite3.connect(sys.argv[2])
with target:
    source.backup(target)  # online backup: a consistent copy while writers go on
status = target.execute("PRAGMA integrity_check").fetchone()[0]
target.close()
source.close()
if status != "ok":
    sys.exit(f"backup.sh: the copy fails integrity_check: {status}")
PY
    ;;
  *)
    echo "backup.sh: cannot back up a database at ${url%%:*}: (PostgreSQL or SQLite only)" >&2
    exit 2
    ;;
esac
mv "$dest.partial" "$dest"
echo "$dest"
