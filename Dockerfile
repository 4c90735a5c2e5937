# Berth as a container: gunicorn as a non-root user, talking to the engine through a mounted socket.
#   docker build -t berth .
#   docker run -d -p 127.0.0.1:8080:8080 \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v "$PWD/tokens.json:/etc/berth/tokens.json:ro" -e BERTH_TOKENS_FILE=/etc/berth/tokens.json \
#     berth
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BERTH_BIND=0.0.0.0:8080 \
    BERTH_DATA_DIR=/var/lib/berth

RUN groupadd --system berth && useradd --system --gid berth --home-dir /app berth \
    && mkdir -p /var/lib/berth && chown berth:berth /var/lib/berth

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY app ./app
COPY wsgi.py gunicorn.conf.py ./

USER berth
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/v1/health', timeout=2).status != 200)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
