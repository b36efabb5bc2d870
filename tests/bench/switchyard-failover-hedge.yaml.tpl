# switchyard under ../shared/bench/failover_bench.sh with the settings the README recommends:
# resource_aware (latency, in-flight and load fused), up to 2 retries on another endpoint for
# connect failures, resets and timeouts (the same policy as the shared template's), health
# checks every second (down after 2, up after 2), and a hedge for idempotent requests at the
# cluster's p95 time to the response head (at least 5 ms): the requests caught on an endpoint
# that stops answering are answered by another one.
workers: 1
admin:
  listen: 127.0.0.1:{admin_port}
access_log:
  enabled: false
listeners:
  - name: bench
    listen: 127.0.0.1:{port}
    routes:
      - cluster: backends
        timeout: 3s
        retries: { attempts: 2, "on": [connect_failure, reset, timeout] }
        hedge: { delay: p95, min_delay: 5ms }
clusters:
  - name: backends
    strategy: resource_aware
    health_check:
      path: /healthz
      interval: 1s
      timeout: 1s
      healthy_threshold: 2
      unhealthy_threshold: 2
      expect_status: "200-299"
    upstream:
      connect_timeout: 1s
    endpoints:
{{each_backend}}
      - address: {backend}
        region: {backend_region}
{{end}}
