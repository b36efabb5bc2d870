# switchyard under ../shared/bench/hetero_bench.sh with the settings the README recommends for
# read traffic: {strategy} (resource_aware by default), and a hedge for idempotent requests at
# the cluster's {hedge} percentile of time to the response head (at least 5 ms). Otherwise as
# ../shared/bench/switchyard-hetero.yaml.tpl: one worker, connection_capacity = the backends'
# slots, health checks every second, no retries.
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
        timeout: 30s
        hedge: { delay: {hedge}, min_delay: 5ms }
clusters:
  - name: backends
    strategy: {strategy}
    resource_aware:
      connection_capacity: {slots}
    health_check:
      path: /healthz
      interval: 1s
      timeout: 1s
    upstream:
      connect_timeout: 1s
    endpoints:
{{each_backend}}
      - address: {backend}
        region: {backend_region}
{{end}}
