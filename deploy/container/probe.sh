#!/bin/bash
# douane-probe PATH: GET PATH (default /healthz) on the admin listener on loopback, with the
# bearer token of the mounted Secret; exit 0 on 200, 1 otherwise. For the container's
# HEALTHCHECK and Kubernetes exec probes: kubelet's httpGet probes cannot read a Secret into
# an Authorization header, and the image has no curl.
#   DOUANE_ADMIN_PORT        (default 9480)
#   DOUANE_ADMIN_TOKEN_FILE  (default /etc/douane/keys/admin-token; absent: no header)
set -u
path=${1:-/healthz}
port=${DOUANE_ADMIN_PORT:-9480}
token_file=${DOUANE_ADMIN_TOKEN_FILE:-/etc/douane/keys/admin-token}
auth=
if [ -r "$token_file" ]; then
    auth="Authorization: Bearer $(tr -d '[:space:]' < "$token_file")"$'\r\n'
fi
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\n%sConnection: close\r\n\r\n' "$path" "$auth" >&3
IFS=' ' read -r -t 5 _ status _ <&3 || exit 1
[ "$status" = 200 ]
