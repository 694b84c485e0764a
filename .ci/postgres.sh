#!/usr/bin/env bash
# Start the local PostgreSQL cluster and make sure the test role and database exist.
# Idempotent; run as root on Debian after `apt-get install postgresql`.
# Prints the URL to export as SITEBEACON_TEST_PG, e.g.:
#   export SITEBEACON_TEST_PG="$(bash .ci/postgres.sh)"
set -euo pipefail

ROLE=sitebeacon
PASSWORD=sitebeacon
DATABASE=sitebeacon_test
PORT=5432

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_lsclusters >/dev/null; then
    log "PostgreSQL is not installed (apt-get install postgresql)"
    exit 1
fi

# The first cluster Debian created (normally 15/main); create one if there is none.
read -r VERSION CLUSTER < <(pg_lsclusters --no-header | awk 'NR==1 {print $1, $2}') || true
if [ -z "${VERSION:-}" ]; then
    VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    CLUSTER=main
    log "creating cluster $VERSION/$CLUSTER"
    pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" >&2
fi
PORT=$(pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $3}')

if ! pg_lsclusters --no-header | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}' \
        | grep -q online; then
    log "starting cluster $VERSION/$CLUSTER on port $PORT"
    pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 50); do
    if runuser -u postgres -- pg_isready -q -p "$PORT"; then break; fi
    sleep 0.2
done
runuser -u postgres -- pg_isready -q -p "$PORT" || { log "server not ready on port $PORT"; exit 1; }

psql_admin() { (cd / && runuser -u postgres -- psql -p "$PORT" -v ON_ERROR_STOP=1 -qtA "$@"); }

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    log "creating role $ROLE"
    psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != "1" ]; then
    log "creating database $DATABASE"
    psql_admin -c "CREATE DATABASE $DATABASE OWNER $ROLE" >&2
fi

echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
