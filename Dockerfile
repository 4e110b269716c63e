# syntax=docker/dockerfile:1
#
# One image for the three processes, chosen by the command:
#   docker run IMAGE                            the API (python -m api, the default)
#   docker run IMAGE python -m worker           a worker (Temporal worker + outbox relay)
#   docker run IMAGE python -m worker.setup     the one-shot setup job (migrations, namespace,
#                                               search attributes), then exits
# Settings come from the environment (core/settings.py; see .env.example).
#
# Targets: `runtime` (the last stage, so the default: what ships) and `dev`, which adds the dev
# extra and dev/ (the local Stripe-compatible server) for docker-compose.yml's `dev` profile.
#   docker build -t microinternships:0.1.0 .
#   docker build --target dev -t microinternships-dev:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm

# --- build: the dependencies' wheels, then the project's, installed into a venv ---------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The project's metadata alone first: the layers built from it (every dependency's wheel) are
# rebuilt when pyproject.toml changes, not when the code does.
COPY pyproject.toml ./
# From it, three lists: the runtime dependencies (the dev extra stays out), the dev extra's (for
# the `dev` target) and the build backend ([build-system] requires, installed here so that the
# project's wheel builds below without isolation, hence without a download). Then the runtime
# dependencies' wheels, installed from those wheels alone into the venv the runtime stage copies.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); \
open('requirements.txt', 'w').write('\n'.join(p['project']['dependencies'])); \
open('dev-requirements.txt', 'w').write('\n'.join(p['project']['optional-dependencies']['dev'])); \
open('build-requirements.txt', 'w').write('\n'.join(p['build-system']['requires']))" \
    && pip install -r build-requirements.txt \
    && pip wheel --wheel-dir /wheels -r requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links /wheels -r requirements.txt
# The sources: the packages of pyproject.toml's `find`, with their package data (core/templates/,
# core/templates/web/static/, core/migrations/). A code change rebuilds from here on only.
COPY activities ./activities
COPY api ./api
COPY core ./core
COPY worker ./worker
COPY workflows ./workflows
# The project's wheel alone (its dependencies are in the venv already), installed. Then, from
# outside /src (-I: nothing from the working directory), fail the build unless the installed
# package finds its templates, stylesheet and migrations (tests/e2e/test_packaging.py runs the entry
# points from such a wheel).
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels/project . \
    && /opt/venv/bin/pip install --no-index --no-deps /wheels/project/microinternships-*.whl \
    && /opt/venv/bin/python -I -c "from activities.notifications import TEMPLATES as t; \
from worker.setup import migrations_folder; \
assert (t / 'email' / 'base.html').is_file(), t; \
assert (t / 'web' / 'static' / 'app.css').is_file(), t; \
print('package data at', t, 'and', migrations_folder())"

# --- app: the runtime image (shipped as `runtime`, below) ----------------------------------------
FROM ${PYTHON_IMAGE} AS app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    API_HOST=0.0.0.0
# libmagic (Debian's libmagic1 and its database): core/attachments.py reads the type of each file
# sent with it; Pango, HarfBuzz and a font: weasyprint renders the documents' PDFs with them.
# Debian's current build, with its security updates, rather than a pinned one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1 \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app
# The venv holds everything the processes run: the packages with their templates, stylesheet
# and migrations as package data (`python -m worker.setup` needs no alembic.ini).
COPY --from=build /opt/venv /opt/venv
# The working directory holds only data/, for the SQLite default (DATABASE_URL unset).
WORKDIR /app
RUN install -d -o app -g app /app/data
USER 10001:10001
# API_PORT (API), WORKER_METRICS_PORT (a worker's Temporal SDK metrics).
EXPOSE 8000 9464
# For the API (the default command). The worker and the setup job override or disable it
# (docker-compose.yml does).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('API_PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "api"]

# --- dev: app + the dev extra + dev/ (local Stripe server, SMTP sink, `make run`'s runner) -------
FROM app AS dev
USER 0:0
COPY --from=build /src/dev-requirements.txt /tmp/dev-requirements.txt
RUN pip install --no-cache-dir -r /tmp/dev-requirements.txt && rm /tmp/dev-requirements.txt
COPY dev ./dev
USER 10001:10001

# --- runtime: what ships (the last stage, so what `docker build .` builds) -----------------------
FROM app AS runtime
