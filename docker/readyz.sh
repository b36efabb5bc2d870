#!/bin/bash
# The image's HEALTHCHECK: GET /readyz on switchyard's admin port, with bash's /dev/tcp (the
# runtime image carries no HTTP client). Exit 0 on 200, 1 otherwise.
port=${SWITCHYARD_ADMIN_PORT:-9901}
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
read -r -t 2 status_line <&3 || exit 1
[[ "$status_line" == "HTTP/1.1 200"* ]]
