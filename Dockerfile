# syntax=docker/dockerfile:1
# rebrand: a slim, non-root image whose only writable place is the backup volume.
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t rebrand .

# The official slim Python image. CI builds a stand-in from Debian packages (no registry
# of base images is reachable there) and passes it here; see .ci/run.
ARG BASE_IMAGE=python:3.11-slim

# ---- build: a venv holding exactly the locked dependencies, then rebrand itself ----
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Every file is checked against the lock's hashes, only wheels are taken, and nothing the
# lock does not name is installed (--no-deps; `pip check` below proves the set complete).
COPY requirements.lock ./
RUN python -m venv /opt/rebrand \
    && /opt/rebrand/bin/pip install --require-hashes --only-binary=:all: --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY worker ./worker
RUN /opt/rebrand/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/rebrand/bin/pip install --no-deps --no-index --find-links=/wheels conference-rebrand \
    && /opt/rebrand/bin/pip check

# ---- runtime: the venv, tini as PID 1, an unprivileged user ----
FROM ${BASE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/example/rebrand
LABEL org.opencontainers.image.title="rebrand" \
      org.opencontainers.image.description="Asynchronous bulk re-theming of every Video Conference in a SignalWire Space" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/rebrand/bin:$PATH
# tini is PID 1: it hands SIGTERM/SIGINT to rebrand and reaps, so a stopped pod drains
# and exits 143 instead of waiting out its grace period. Debian's build, whatever the
# base's release holds (hence no version pin).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /work --shell /usr/sbin/nologin rebrand \
    && mkdir -p /work/rebrand-backups \
    && chown rebrand /work/rebrand-backups
COPY --from=build /opt/rebrand /opt/rebrand
WORKDIR /work
COPY config.example.yaml /work/config.example.yaml
# The journal of every run lands here: mount a volume to keep it.
VOLUME ["/work/rebrand-backups"]
USER 10001
ENTRYPOINT ["tini", "--", "rebrand"]
CMD ["--help"]
