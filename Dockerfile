FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 assistant
USER assistant

EXPOSE 3000 9477
ENV PORT=3000 OPS_PORT=9477
CMD ["python", "-m", "bot", "run"]
