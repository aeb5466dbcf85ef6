FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY logistics logistics
COPY carriers carriers
COPY webhooks webhooks
COPY labels labels
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8080
CMD ["logistics", "api"]
