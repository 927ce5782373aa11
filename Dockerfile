# One image for every part of workflow: the operator (`workflow operator run`),
# buckets (`workflow buckets serve`) and the runner inside Work pods
# (`workflow run`); the Helm chart picks the command. Multi-stage: the build
# stage installs the package into a virtual environment, the final stage copies
# only that environment onto the same slim base - no pip cache, no sources, no
# build tools - and runs as a non-root user.

# Pinned by tag; both stages use it (the venv links to this Python). A build
# without a registry passes a locally built Debian image with python3 instead.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# pip reads no configuration file by default; an offline build points this at
# one that installs from a mounted folder of wheels.
ARG PIP_CONFIG_FILE=/dev/null
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY operator ./operator
# Every dependency ships wheels (psycopg[binary] included): nothing is compiled.
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="workflow" \
      org.opencontainers.image.description="Operator, buckets work queue and runner of workflow Work resources" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    USER=workflow
WORKDIR /tmp
# A numeric non-root user (the chart's runAsUser) without a passwd entry: USER
# above answers getpass.getuser() (kopf names its peer with it) for any uid.
USER 10001:10001
EXPOSE 8004 8080
CMD ["workflow", "--help"]
