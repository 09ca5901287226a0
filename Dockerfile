# One image for workers, Flower and the simulator.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VPSWEB_CONFIG_DIR=/app/config
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY config ./config
RUN pip install --no-cache-dir . && useradd --create-home vpsweb
USER vpsweb
CMD ["vpsweb", "worker"]
