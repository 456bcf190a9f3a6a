# One image for kulta-watcher, kulta-worker and the kulta CLI:
#   docker build -t kulta:0.1.0 .
#   docker run --rm kulta:0.1.0 kulta --help
# Dependencies are pinned by constraints.txt (the same pins the test suite runs with).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/kulta
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY kulta ./kulta
COPY workflows ./workflows
COPY activities ./activities
COPY watcher ./watcher
RUN /opt/kulta/bin/pip install --constraint constraints.txt . \
 && /opt/kulta/bin/python -m compileall -q /opt/kulta

FROM python:3.11-slim
# A fixed numeric user, so `runAsNonRoot` can verify it and volumes can be chowned to it.
RUN groupadd --system --gid 10001 kulta \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent kulta \
 && mkdir -p /var/lib/kulta/occurrences \
 && chown 10001:10001 /var/lib/kulta/occurrences
COPY --from=build /opt/kulta /opt/kulta
# The root filesystem may be read-only: no bytecode is written at run time (compiled above),
# and the only writable paths are the two volumes below.
ENV PATH=/opt/kulta/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KULTA_OCCURRENCE_DIR=/var/lib/kulta/occurrences \
    KULTA_HTTP_PORT=8080
VOLUME ["/tmp", "/var/lib/kulta/occurrences"]
USER 10001:10001
EXPOSE 8080
# Liveness of whichever process runs (watcher or worker); the CLI alone has no health port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('KULTA_HTTP_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
CMD ["kulta", "--help"]
