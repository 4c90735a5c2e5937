# Berth as a container: gunicorn as a non-root user, talking to the engine through a mounted socket.
#   docker build -t berth .
#   docker run -d -p 127.0.0.1:8080:8080 \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v "$PWD/tokens.json:/etc/berth/tokens.json:ro" -e BERTH_TOKENS_FILE=/etc/berth/tokens.json \
#     berth
# Without Docker Hub, from a base made of Debian packages and wheels fetched beforehand:
#   scripts/base-image.sh berth-base:bookworm
#   .venv/bin/pip wheel -w wheels -r requirements.txt
#   docker build --network none --build-arg BASE=berth-base:bookworm -t berth .
# Either base works: Berth runs from its own venv in /opt/venv, made with the base's python3.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    BERTH_BIND=0.0.0.0:8080 \
    BERTH_DATA_DIR=/var/lib/berth

RUN groupadd --system berth \
    && useradd --system --gid berth --home-dir /app --no-create-home --shell /usr/sbin/nologin berth \
    && mkdir -p /var/lib/berth && chown berth:berth /var/lib/berth && chmod 0700 /var/lib/berth

WORKDIR /app
# `wheel[s]` copies the context's wheels/ when there is one (and nothing otherwise): then pip
# installs from those files alone, else from the package index.
COPY requirements.txt wheel[s] /tmp/berth-build/
RUN python3 -m venv /opt/venv \
    && if ls /tmp/berth-build/*.whl >/dev/null 2>&1; then \
        pip install --no-index --find-links /tmp/berth-build -r /tmp/berth-build/requirements.txt; \
    else \
        pip install -r /tmp/berth-build/requirements.txt; \
    fi \
    && rm -rf /tmp/berth-build
COPY app ./app
COPY wsgi.py gunicorn.conf.py scripts/healthcheck.py ./

USER berth
EXPOSE 8080
# Asks /v1/health where BERTH_BIND says gunicorn listens (over HTTPS when BERTH_TLS_CERT is set).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
