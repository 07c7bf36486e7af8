# One image for the api, worker and migrate services of docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# CUDA builds of torch for the GPU worker: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY core ./core
COPY ml ./ml
COPY worker ./worker
COPY client ./client
COPY alembic ./alembic
COPY alembic.ini ./
RUN pip install --extra-index-url "$TORCH_INDEX_URL" . \
    && useradd --create-home --uid 1000 trainserve \
    && mkdir -p /var/lib/trainserve && chown trainserve /var/lib/trainserve
USER trainserve

ENV VAR_DIR=/var/lib/trainserve DATA_DIR=/data
EXPOSE 8000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
