#!/bin/sh
# kinsta-scheduler's container entrypoint: check that the data directory (jobs.yaml, the SQLite
# history) can be written by the user the container runs as, and say what to do when it cannot,
# instead of letting SQLite fail later with "attempt to write a readonly database".
#
#   KINSTA_SCHEDULER_DATA   the data directory (default /data)
#   KINSTA_SCHEDULER_BIN    the program to run (default kinsta-scheduler)
#
# Exit 2 (bad setup) when the directory is missing or not writable; otherwise exec the program
# with the container's arguments, so that it receives the signals (SIGTERM, SIGHUP) itself.
set -eu

data="${KINSTA_SCHEDULER_DATA:-/data}"
program="${KINSTA_SCHEDULER_BIN:-kinsta-scheduler}"

# Commands that write nothing in the data directory run anywhere.
case "${1:-}" in
    --help|--version|schema|sandbox) exec "$program" "$@" ;;
esac

# A history in a server database (PostgreSQL) needs nothing written here: jobs.yaml may even be
# mounted read-only.
case "${KINSTA_SCHEDULER_DATABASE_URL:-sqlite}" in
    sqlite*) ;;
    *) exec "$program" "$@" ;;
esac

uid="$(id -u)"
gid="$(id -g)"
if [ ! -d "$data" ]; then
    echo "kinsta-scheduler: $data does not exist: mount a directory there, e.g. -v \"\$PWD/data:$data\"" >&2
    exit 2
fi
probe="$data/.kinsta-scheduler-write-test.$$"
if ! ( : > "$probe" ) 2>/dev/null; then
    owner="$(stat -c '%u:%g' "$data" 2>/dev/null || echo unknown)"
    cat >&2 <<MESSAGE
kinsta-scheduler: $data is not writable by uid $uid (gid $gid); it belongs to $owner.
The daemon keeps its history (kinsta-scheduler.db) there. Either
  - give the directory to the image's user (uid $uid):   sudo chown -R $uid:$gid ./data
  - or run the container as the directory's owner:
        docker run --user "\$(id -u):\$(id -g)" -v "\$PWD/data:$data" ...
    (compose: user: "1000:1000"), or
  - keep the history in PostgreSQL (KINSTA_SCHEDULER_DATABASE_URL); then $data may be
    read-only, with only jobs.yaml in it.
MESSAGE
    exit 2
fi
rm -f "$probe"
exec "$program" "$@"
