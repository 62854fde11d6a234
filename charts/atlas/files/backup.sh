# Atlas scheduled backup: one pg_dump of one service's database into the backup volume, then retention.
#
# The container of the CronJob templates/postgresql-backup.yaml renders, run inline as
#   sh -c "<this file>" backup.sh
# in the database's own image (postgres:<tag>-alpine: busybox sh, and pg_dump/pg_restore of the server's
# major version), as uid 70 with a read-only root. POSIX sh only: no bash, no GNU options.
#
# Environment (the chart sets all of it):
#   PGHOST PGPORT PGDATABASE PGUSER   libpq: the database's Service, the service's database and role
#   PGCONNECT_TIMEOUT PGAPPNAME       libpq: give up connecting after so many seconds; name in pg_stat_activity
#   ATLAS_BACKUP_PASSWORD_FILE        the database's Secret, mounted: the password, trailing newlines
#                                     dropped (as the image's entrypoint drops them when it initialises)
#   ATLAS_BACKUP_DIR                  the backup volume, an absolute path: where the dumps are kept
#   ATLAS_BACKUP_KEEP                 how many dumps to keep, the newest (a positive integer)
#   TMPDIR                            private scratch space (a memory-backed emptyDir) for the pgpass file
#
# What it does:
#   1. writes the password into a pgpass file (mode 0600) under $TMPDIR and points PGPASSFILE at it: the
#      password is in no environment variable and on no command line;
#   2. dumps with `pg_dump --format=custom` into $ATLAS_BACKUP_DIR/.<db>-<stamp>.dump.partial (stamp: UTC,
#      `date -u +%Y%m%dT%H%M%SZ`), checks that pg_restore can read it, syncs, and only then renames it
#      to <db>-<stamp>.dump. A failed dump (or SIGTERM, e.g. activeDeadlineSeconds) removes its partial
#      file, exits non-zero and touches no other file, so a failed dump never counts as one;
#   3. after a successful dump only, deletes the oldest <db>-<stamp>.dump beyond $ATLAS_BACKUP_KEEP. Only
#      names of exactly that form are counted or deleted (never the new dump): a file put there by hand
#      stays. Partial files an earlier, killed run left behind are removed first.
# Exit status: 0 when a new dump was kept, non-zero otherwise (the Job retries up to its backoffLimit).

set -eu

log() { printf 'backup: %s\n' "$*"; }
fail() {
  printf 'backup: %s\n' "$*" >&2
  exit 1
}

: "${PGHOST:?}" "${PGPORT:?}" "${PGDATABASE:?}" "${PGUSER:?}"
: "${ATLAS_BACKUP_PASSWORD_FILE:?}" "${ATLAS_BACKUP_DIR:?}" "${ATLAS_BACKUP_KEEP:?}" "${TMPDIR:?}"
dir=$ATLAS_BACKUP_DIR
keep=$ATLAS_BACKUP_KEEP
case $keep in
  '' | *[!0-9]*) fail "ATLAS_BACKUP_KEEP must be a positive integer, not '$keep'" ;;
esac
[ "$keep" -ge 1 ] || fail "ATLAS_BACKUP_KEEP must be at least 1, not $keep"
case $dir in
  /*) ;;
  *) fail "ATLAS_BACKUP_DIR must be an absolute path, not '$dir'" ;;
esac
[ -d "$dir" ] && [ -w "$dir" ] || fail "$dir is not a writable directory (is the backup volume mounted?)"

# 1. The password, as libpq reads it from a pgpass file: host:port:database:user:password, with ':' and
#    '\' escaped by '\'. printf is a shell builtin, so the password reaches sed on stdin, not in argv.
umask 077
password=$(cat "$ATLAS_BACKUP_PASSWORD_FILE")
[ -n "$password" ] || fail "$ATLAS_BACKUP_PASSWORD_FILE is empty"
case $password in
  *'
'*) fail "the password in $ATLAS_BACKUP_PASSWORD_FILE spans several lines: a pgpass file cannot hold it" ;;
esac
PGPASSFILE="$TMPDIR/pgpass"
printf '*:*:*:*:%s\n' "$(printf '%s' "$password" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g')" >"$PGPASSFILE"
unset password
export PGPASSFILE

# 2. The dump, under a name no retention or restore looks at until it is complete.
stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dir/$PGDATABASE-$stamp.dump"
partial="$dir/.$PGDATABASE-$stamp.dump.partial"
[ ! -e "$final" ] || fail "$final exists already (two runs within one second?): not overwritten"
for stale in "$dir/.$PGDATABASE"-*.dump.partial; do
  [ -e "$stale" ] || continue
  rm -f "$stale"
  log "removed $stale, left by an interrupted run"
done

dump_pid=
trap 'rm -f "$partial"' EXIT
# SIGTERM reaches only this shell (the container's pid 1): pass it on to pg_dump, then clean up.
trap '[ -z "$dump_pid" ] || kill "$dump_pid" 2>/dev/null; exit 143' TERM INT

umask 027
log "dumping database $PGDATABASE from $PGHOST:$PGPORT as $PGUSER to $final"
pg_dump --format=custom --no-password --file="$partial" &
dump_pid=$!
if ! wait "$dump_pid"; then
  fail "pg_dump failed: no dump written; the dumps already in $dir are untouched"
fi
dump_pid=
pg_restore --list "$partial" >/dev/null || fail "pg_restore cannot read the new dump back: discarded"
sync
mv "$partial" "$final"
sync
log "wrote $final ($(wc -c <"$final" | tr -d ' ') bytes)"

# 3. Retention: the names sort by their UTC stamp, oldest first.
set -- "$dir/$PGDATABASE"-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.dump
[ -e "$1" ] || set --
remaining=$#
for old in "$@"; do
  [ "$remaining" -gt "$keep" ] || break
  [ "$old" != "$final" ] || continue
  rm -f "$old"
  log "removed $old (keeping the newest $keep)"
  remaining=$((remaining - 1))
done
log "done: $remaining dump(s) of $PGDATABASE in $dir"
