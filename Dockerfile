# One image, two commands: `serve` (the default) and `worker`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BCWEBHOOKS_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
RUN pip install . \
 && useradd --create-home --uid 10001 bcwebhooks

USER bcwebhooks
EXPOSE 8000
ENTRYPOINT ["bcwebhooks"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
