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

# --- build: a wheel of the project and of its runtime dependencies, installed into a venv ------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# .dockerignore lets in only the packages, migrations/, templates/, dev/ and their metadata.
COPY . .
# The project's wheel and its runtime dependencies' wheels (the dev extra stays out), installed
# from those wheels alone into the venv the runtime stage copies.
RUN pip wheel --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links /wheels /wheels/microinternships-*.whl
# The email templates: activities/notifications.py looks for them at
# Path(activities/notifications.py).parents[1] / "templates", which for an installed package
# is site-packages/templates. Put them there, and fail the build if that is not where it looks
# (-I: not from /src, which holds the sources too).
RUN cp -r templates "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/" \
    && /opt/venv/bin/python -I -c "from activities.notifications import TEMPLATES as t; \
assert (t / 'email').is_dir(), f'email templates not found at {t}'"
# The dev extra's requirements, for the `dev` target.
RUN python -c "import tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dev']; \
print('\n'.join(deps))" > /src/dev-requirements.txt

# --- app: the runtime image (shipped as `runtime`, below) ----------------------------------------
FROM ${PYTHON_IMAGE} AS app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    API_HOST=0.0.0.0
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# The working directory holds what `alembic upgrade head` and `python -m worker.setup` need
# (alembic.ini, migrations/), and data/ for the SQLite default (DATABASE_URL unset).
WORKDIR /app
COPY --from=build /src/alembic.ini ./
COPY --from=build /src/migrations ./migrations
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
COPY --from=build /src/dev ./dev
USER 10001:10001

# --- runtime: what ships (the last stage, so what `docker build .` builds) -----------------------
FROM app AS runtime
