#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a loopback port, for rating-service's PostgreSQL tests.
#
#   .ci/postgres.sh start DIR   # prints the DATABASE_URL (only that) on stdout
#   .ci/postgres.sh stop DIR    # stops the cluster and deletes DIR
#
# `start` installs Debian's `postgresql` with apt-get when initdb/pg_ctl are missing, creates a
# cluster in DIR/data (once; a second `start` on the same DIR reuses it, restarting it if
# needed), listens on 127.0.0.1 only, on a free port, with password (SCRAM) authentication over
# TCP, and creates the role and database `ratings` (password `ratings`). PostgreSQL refuses to
# run as root, so under root the server runs as the `postgres` user (created if missing).
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

usage() { die "usage: $0 start|stop DIR"; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$2

# The newest installed server's binaries, e.g. /usr/lib/postgresql/15/bin.
find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres && -x $d/psql ]]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

install_postgres() {
  command -v apt-get >/dev/null || die "PostgreSQL is missing and apt-get is not available; install PostgreSQL"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "PostgreSQL is missing; installing it needs root or sudo"
    sudo=(sudo)
  fi
  log "installing Debian's postgresql"
  "${sudo[@]}" apt-get update -qq >&2
  # `postgresql` brings the newest server Debian ships and its client (psql).
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    postgresql >&2
}

# Runs a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

is_running() {
  [[ -f $dir/data/PG_VERSION ]] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

url() {
  echo "postgres://ratings:ratings@127.0.0.1:$(cat "$dir/port")/ratings"
}

start_server() {
  local attempt port
  for attempt in 1 2 3; do
    port=$(free_port)
    echo "$port" >"$dir/port"
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/socket -c max_connections=200" \
        start >&2; then
      return 0
    fi
    log "start on port $port failed (attempt $attempt):"
    tail -n 5 "$dir/server.log" >&2 || true
  done
  die "could not start PostgreSQL; log in $dir/server.log"
}

start() {
  bindir=$(find_bindir) || { install_postgres; bindir=$(find_bindir) || die "initdb/pg_ctl still missing after installing postgresql"; }
  log "using $bindir"

  mkdir -p "$dir"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres "$dir"
  fi

  if is_running; then
    log "already running"
    url
    return 0
  fi

  if [[ ! -f $dir/data/PG_VERSION ]]; then
    local pwfile="$dir/superuser-password"
    as_owner sh -c "umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >'$pwfile'"
    as_owner mkdir -p "$dir/socket"
    # Local (socket) connections trust their owner, for the setup below; TCP needs a password.
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C \
      --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  fi

  start_server
  local port
  port=$(cat "$dir/port")
  as_owner "$bindir/psql" -h "$dir/socket" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 >&2 <<'SQL'
SELECT 'CREATE ROLE ratings LOGIN PASSWORD ''ratings'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ratings') \gexec
SELECT 'CREATE DATABASE ratings OWNER ratings'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ratings') \gexec
SQL
  log "running on 127.0.0.1:$port (data in $dir/data)"
  url
}

stop() {
  if [[ ! -d $dir ]]; then
    return 0
  fi
  if bindir=$(find_bindir) && is_running; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || log "pg_ctl stop failed"
  fi
  rm -rf "$dir"
}

case $action in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
