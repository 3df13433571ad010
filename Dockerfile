# Tiaojie server image: slim Debian + Python, non-root, health-checked.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TIAOJIE_HOST=0.0.0.0 \
    TIAOJIE_PORT=8080 \
    TIAOJIE_DATA=/data \
    TIAOJIE_RTC_PORTS=40000-40199

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
# The packet plane's C extension (rtc/_fastpath.c) is compiled here: the compiler is
# installed for the build only (the Makefile's BUILD_APT; the image has Python's headers).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && python -c "import tiaojie.rtc._fastpath" \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* /app/*

RUN useradd --system --uid 10001 --home-dir /data tiaojie \
    && mkdir -p /data && chown tiaojie /data
USER tiaojie
VOLUME ["/data"]
# HTTP(S), and the media ports (--rtc-ports): publish both (deploy/docker-compose.yml)
EXPOSE 8080/tcp 40000-40199/udp

# `tiaojie health`: the local /api/health (over HTTPS when TIAOJIE_TLS_CERT is set)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["tiaojie", "health"]

CMD ["tiaojie", "serve"]
