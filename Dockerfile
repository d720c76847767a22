# syntax=docker/dockerfile:1
# rebrand: a slim, non-root image whose only writable place is the backup volume.

# ---- build: turn the source into a wheel, with every dependency as a wheel too ----
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---- runtime: install the wheels into a venv, run as an unprivileged user ----
FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/rebrand/bin:$PATH
COPY --from=build /wheels /wheels
RUN python -m venv /opt/rebrand \
    && /opt/rebrand/bin/pip install --no-index --find-links=/wheels conference-rebrand \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /work --shell /usr/sbin/nologin rebrand \
    && mkdir -p /work/rebrand-backups \
    && chown rebrand /work/rebrand-backups
WORKDIR /work
COPY config.example.yaml /work/config.example.yaml
# The journal of every run lands here: mount a volume to keep it.
VOLUME ["/work/rebrand-backups"]
USER 10001
ENTRYPOINT ["rebrand"]
CMD ["--help"]
