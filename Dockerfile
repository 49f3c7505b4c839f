# The hub's image for the production-shaped stack (docker-compose.yml).
FROM python:3.11-slim
WORKDIR /opt/supervision-hub
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY schemas ./schemas
# a plain install: the contracts travel inside the package (hub/contracts)
RUN pip install --no-cache-dir . && useradd --system --uid 10001 hub
USER hub
ENV HUB_STATE_DIR=/tmp/hub-state
EXPOSE 9400
ENTRYPOINT ["hub"]
