#!/bin/sh
# The `temporal-schema` one-shot of docker-compose.yml (temporalio/admin-tools): brings Temporal's
# two databases, created by deploy/postgres/init-databases.sql, to the schema version this image
# ships, from empty or from an older release. Safe to run again: setup-schema skips a database
# that already has a schema, update-schema applies only the missing versions. Run it (with the
# admin-tools image of the new server version) before upgrading the Temporal server.
set -eu

# The password is SQL_PASSWORD, from the environment (temporal-sql-tool reads it there).
for pair in temporal:temporal temporal_visibility:visibility; do
    db=${pair%%:*}
    schema=${pair#*:}
    echo "schema of database $db"
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
        -u "$POSTGRES_USER" --db "$db" setup-schema -v 0.0
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
        -u "$POSTGRES_USER" --db "$db" \
        update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
echo "Temporal's schema is up to date"
