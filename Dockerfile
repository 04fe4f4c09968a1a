# app-tflite-inference for docker-compose.yml: the service, its default config, models and profiles.
FROM python:3.11-slim
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY app_service ./app_service
RUN pip install --no-cache-dir . && rm -rf /root/.cache
COPY res ./res
COPY models/*.tflite models/*.yaml ./models/
COPY profiles ./profiles
USER 2002:2001
EXPOSE 59741
ENTRYPOINT ["app-tflite-inference"]
