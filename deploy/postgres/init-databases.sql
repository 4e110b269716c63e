-- Runs once, when the Postgres volume is first initialised (docker-entrypoint-initdb.d, as the
-- superuser): one server, a role and a database for the app, a role and two databases for
-- Temporal. The passwords come from the container's environment (docker-compose.yml).
-- Changing them later in .env does not change them here: use ALTER ROLE ... PASSWORD.
\getenv app_password APP_DB_PASSWORD
\getenv temporal_password TEMPORAL_DB_PASSWORD

CREATE ROLE app LOGIN PASSWORD :'app_password';
CREATE DATABASE app OWNER app;

-- Temporal's schema tool (the temporal-schema service) creates the tables in these.
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
