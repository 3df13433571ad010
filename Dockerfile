# Tiaojie server image: slim Debian + Python, non-root, health-checked.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TIAOJIE_HOST=0.0.0.0 \
    TIAOJIE_PORT=8080 \
    TIAOJIE_DATA=/data

# Runtime Debian packages: RUN_APT in the Makefile (the CJK font the agreement PDFs embed)
# plus CA certificates.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The wheel installs everything as `tiaojie.*` (the links in tiaojie/ map the top-level
# folders), with web/ as package data; the sources are not kept in the image.
COPY pyproject.toml README.md ./
COPY tiaojie ./tiaojie
COPY rtc ./rtc
COPY archive ./archive
COPY signing ./signing
COPY client ./client
COPY recorder ./recorder
COPY server ./server
COPY web ./web
RUN pip install . && rm -rf /app/*

RUN useradd --system --uid 10001 --home-dir /data tiaojie \
    && mkdir -p /data && chown tiaojie /data
USER tiaojie
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('TIAOJIE_PORT','8080'), timeout=4)" || exit 1

CMD ["tiaojie", "serve"]
