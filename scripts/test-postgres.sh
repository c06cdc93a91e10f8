#!/usr/bin/env bash
# Starts a private PostgreSQL on loopback for the test suite, installing it if needed.
# Prints shell `export` lines: ARKWRIGHT_TEST_PG_URL, or ARKWRIGHT_TEST_PG_SKIP with why.
set -u
port=${ARKWRIGHT_PG_PORT:-54329}
dir=${ARKWRIGHT_PG_DIR:-/tmp/arkwright-pg}
say_skip() { echo "export ARKWRIGHT_TEST_PG_SKIP='$1'"; exit 0; }
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

bin=$(find_bin)
if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing PostgreSQL for the tests (apt-get)..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2
  bin=$(find_bin)
fi
[ -n "$bin" ] || say_skip "PostgreSQL is not installed and apt-get could not install it"

# The server refuses to run as root; the Debian package creates a postgres user.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  rm -rf "$dir" && mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_owner "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null 2>&1 \
    || say_skip "initdb failed in $dir"
  as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null 2>&1 \
    || say_skip "PostgreSQL did not start (see $dir/server.log)"
fi
if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc \
    "select 1 from pg_database where datname = 'arkwright_test'" | grep -q 1; then
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres arkwright_test \
    || say_skip "could not create the test database"
fi
echo "export ARKWRIGHT_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$port/arkwright_test"
