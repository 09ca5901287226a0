# One image for workers, Flower and the simulator. The default config ships inside
# the package; mount your own and set VPSWEB_CONFIG_DIR to change it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --create-home vpsweb
USER vpsweb
CMD ["vpsweb", "worker"]
