# The gateway on Debian 12, as the project is developed and tested.
# PyAV wheels bundle FFmpeg: the image needs no ffmpeg binary.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY recorder ./recorder
COPY analytics ./analytics
COPY config ./config
RUN pip install --no-cache-dir . && useradd --system --home /data sharpeyes \
    && mkdir -p /data && chown sharpeyes /data
USER sharpeyes
VOLUME /data
EXPOSE 8080
# Inside a container the gateway must listen beyond loopback; publish the port deliberately.
CMD ["sharpeyes", "serve", "--host", "0.0.0.0", "--port", "8080", "--data", "/data"]
