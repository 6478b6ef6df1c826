# One image, two commands: `serve` (the default) and `worker`.
# The base image is pinned to an exact version (the Python CI runs on) and every dependency comes from
# requirements.lock (exact versions and hashes): the same build gives the same image.
FROM python:3.11.7-slim-bookworm

# PYTHONUNBUFFERED=1 gets print() output to `docker logs` at once; the receiver's JSON log lines are
# still written in batches (service/logs.py: buffered_stderr). scripts/bench_ingest.py runs the receiver
# with these same variables, read from this file.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BCWEBHOOKS_LOG_FORMAT=json

WORKDIR /app
# Dependencies first, in a layer of their own that a code change does not invalidate.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
# The build backend is in the lock too: nothing unpinned is fetched for the project itself.
RUN pip install --no-deps --no-build-isolation . \
 && useradd --create-home --uid 10001 bcwebhooks

USER bcwebhooks
EXPOSE 8000
ENTRYPOINT ["bcwebhooks"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
