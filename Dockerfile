FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app

# The dependencies first, in a layer of their own: a change to the code does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt
COPY README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 assistant
USER assistant

EXPOSE 3000 9477
ENV PORT=3000 OPS_PORT=9477
CMD ["python", "-m", "bot", "run"]
