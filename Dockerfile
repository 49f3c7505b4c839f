# The hub's image for the production-shaped stack (docker-compose.yml).
#
# Wheels first, where a compiler is at hand: cavro (the workers' Avro codec)
# publishes wheels for x86-64 only, so on ARM servers (Kunpeng, Graviton) it
# is built from its source here. The image itself gets wheels, no compiler.
FROM python:3.11-slim AS wheels
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
WORKDIR /opt/supervision-hub
COPY --from=wheels /wheels /wheels
# a plain install: the contracts travel inside the package (hub/contracts)
RUN pip install --no-cache-dir --no-index --find-links /wheels supervision-hub && rm -rf /wheels \
    && useradd --system --uid 10001 hub
USER hub
ENV HUB_STATE_DIR=/tmp/hub-state
EXPOSE 9400
ENTRYPOINT ["hub"]
