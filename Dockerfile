# The flow image. The PP-OCR models ship in recognizers/models/ and the rapidocr wheel:
# nothing downloads at run time, so it runs on air-gapped sites.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements-runtime.lock ./
# The locked versions first (hash-checked, the same set CI passed, without the test
# tools), then the project.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements-runtime.lock
COPY kernel kernel
COPY alpr alpr
COPY flows flows
COPY recognizers recognizers
COPY hotlists hotlists
COPY connectors connectors
COPY sim sim
COPY benchmarks benchmarks
COPY safeguards safeguards
RUN pip install --no-cache-dir --no-deps --no-build-isolation .
# The flow's recovery folder (docker-compose.yml mounts a volume here): owned by the user
# the flow runs as, so a new volume starts writable.
RUN mkdir -p /var/lib/alpr/recovery && chown nobody /var/lib/alpr/recovery
ENV ALPR_RECOVERY_DIR=/var/lib/alpr/recovery
USER nobody
# Process i of the flow serves /metrics on 9108 + i.
EXPOSE 9108 9109
CMD ["alpr", "flow", "--processes", "2"]
