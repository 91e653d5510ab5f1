# kinsta-scheduler: the daemon in a slim image. Mount /data for jobs.yaml and the SQLite history.
#   docker build -t kinsta-scheduler .
#   docker run --rm --entrypoint cat kinsta-scheduler /opt/kinsta-scheduler/jobs.example.yaml > data/jobs.yaml
#   docker run -v "$PWD/data:/data" -e KINSTA_API_KEY kinsta-scheduler
#   docker run -v "$PWD/data:/data" kinsta-scheduler run --sandbox
# The base image by digest (python:3.11-slim, a multi-platform index): a build never takes an
# image nobody reviewed. Dependabot (.github/dependabot.yml) proposes the next digest each week;
# to move it by hand: docker buildx imagetools inspect python:3.11-slim (README: Deployment).
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies at the versions and hashes of requirements.lock (make lock), then the project.
COPY requirements.lock ./
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY scheduler ./scheduler
COPY migrations ./migrations
RUN /opt/venv/bin/pip install --no-deps .

FROM ${PYTHON_IMAGE}
# Pango and a font for `report --format pdf`: WeasyPrint lays the report's text out with them
# (no browser in the image). Nothing else the daemon runs needs a system package.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 scheduler \
    && useradd --system --uid 10001 --gid scheduler --home-dir /data --no-create-home scheduler \
    && mkdir -p /data && chown scheduler:scheduler /data
COPY --from=build /opt/venv /opt/venv
# No jobs ship in /data: without a mounted jobs.yaml the daemon refuses to start (exit 2) and
# says how; a fresh named volume stays empty. The example is for reading and copying only.
COPY jobs.yaml /opt/kinsta-scheduler/jobs.example.yaml
# Checks that /data is writable by the user the container runs as (and says how to fix it when
# a host directory belongs to another uid), then execs kinsta-scheduler with the arguments.
COPY deploy/entrypoint.sh /usr/local/bin/kinsta-scheduler-entrypoint
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    KINSTA_SCHEDULER_CONFIG=/data/jobs.yaml
USER scheduler
WORKDIR /data
VOLUME ["/data"]
# The history database defaults to /data/kinsta-scheduler.db, beside jobs.yaml.
# Stop with SIGTERM (docker stop): running tasks get daemon.shutdown_timeout (30 s) to finish,
# then the daemon records where it is and exits 0. Give docker stop more than that: -t 45.
STOPSIGNAL SIGTERM
# /metrics (Prometheus) and /healthz on 9464.
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"
ENTRYPOINT ["kinsta-scheduler-entrypoint"]
CMD ["run", "--metrics-port", "9464", "--metrics-host", "0.0.0.0"]
