# The hub's image for the production-shaped stack (docker-compose.yml).
FROM python:3.11-slim
WORKDIR /opt/supervision-hub
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY schemas ./schemas
# editable, so hub finds schemas/ beside its package as in a checkout
RUN pip install --no-cache-dir -e . && useradd --system --uid 10001 hub
USER hub
ENV HUB_SCHEMA_DIR=/opt/supervision-hub/schemas HUB_STATE_DIR=/tmp/hub-state
EXPOSE 9400
ENTRYPOINT ["hub"]
