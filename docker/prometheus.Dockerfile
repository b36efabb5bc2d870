# Prometheus from Debian's archive, for docker/compose.yaml (no registry image needed).
ARG BASE=debian:12-slim
FROM ${BASE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      prometheus && rm -rf /var/lib/apt/lists/*
COPY docker/prometheus.yml /etc/prometheus/prometheus.yml
USER prometheus
EXPOSE 9090
ENTRYPOINT ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", \
            "--storage.tsdb.path=/var/lib/prometheus/metrics2", \
            "--web.listen-address=0.0.0.0:9090"]
