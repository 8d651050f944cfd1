# syntax=docker/dockerfile:1
#
# openai-key-exporter container image.
#
# Stage 1 builds the wheel from the sources and installs it, with its dependencies, into a
# virtualenv. Stage 2 is the same pinned base image (the virtualenv's interpreter is a symlink
# to it) and receives only that virtualenv: no build tools, no compiler, no pip, no caches.
#
# The process runs as a numeric non-root user (65532), listens on :9471, writes nothing to
# disk and needs no home directory, so it runs with a read-only root filesystem.
#
#   docker build -t openai-key-exporter:0.4.0 .
#   docker run --rm -p 9471:9471 openai-key-exporter:0.4.0 --demo

FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

RUN python -m pip install --no-cache-dir build==1.6.1

# Only what the wheel is built from (see .dockerignore, an allowlist of the same paths).
COPY pyproject.toml README.md LICENSE ./
COPY exporter/ exporter/

# Wheel first, then a virtualenv holding only the wheel and its runtime dependencies;
# pip and setuptools leave the virtualenv once they have done their job.
RUN python -m build --wheel --outdir /dist . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /dist/*.whl \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools \
    && /opt/venv/bin/openai-key-exporter --version


FROM python:3.11.14-slim-bookworm

ARG VERSION=0.4.0

LABEL org.opencontainers.image.title="openai-key-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the credentials of an OpenAI organization (project and admin API keys, members, invites, certificates, service accounts)" \
      org.opencontainers.image.source="https://github.com/openai-key-exporter/openai-key-exporter" \
      org.opencontainers.image.url="https://github.com/openai-key-exporter/openai-key-exporter" \
      org.opencontainers.image.documentation="https://github.com/openai-key-exporter/openai-key-exporter/blob/main/docs/deployment.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"

# The service needs the interpreter, not an installer: drop the base image's pip, setuptools
# and wheel so nothing in the running container can fetch and install code.
RUN ["python", "-m", "pip", "uninstall", "--yes", "--no-cache-dir", "pip", "setuptools", "wheel"]

COPY --from=builder /opt/venv /opt/venv

# Bytecode was compiled at install time; nothing is written at run time.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 65532:65532
WORKDIR /
EXPOSE 9471

ENTRYPOINT ["/opt/venv/bin/openai-key-exporter"]
