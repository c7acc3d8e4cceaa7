#!/bin/sh
# Start coturn (the compose file's `coturn` service) with the file render_config.py wrote, and serve TURN
# over TLS with the certificate Caddy obtains for TURN_DOMAIN: coturn starts without TLS until that
# certificate exists (UDP/TCP TURN work meanwhile), is restarted once it appears, and re-reads it on each
# renewal (SIGUSR2 makes coturn reload its certificates). With TURN_TLS_CERT_FILE set, the rendered file
# names the certificate and this script only watches it for renewals.
set -eu

config="${COTURN_CONFIG:-/generated/turnserver.conf}"
search_dir="${COTURN_CERT_SEARCH_DIR:-/caddy-data/caddy/certificates}"
poll="${COTURN_CERT_POLL_SECONDS:-60}"
pid_file="${COTURN_PID_FILE:-/tmp/coturn.pid}"
domain="${TURN_DOMAIN:?TURN_DOMAIN is not set}"

# Caddy stores a certificate under <storage>/certificates/<issuer>/<domain>/<domain>.crt (and .key).
find_certificate() {
  if [ -n "${TURN_TLS_CERT_FILE:-}" ]; then
    echo "$TURN_TLS_CERT_FILE"
    return
  fi
  for candidate in "$search_dir"/*/"$domain"/"$domain".crt; do
    if [ -f "$candidate" ]; then
      echo "$candidate"
      return
    fi
  done
}

fingerprint() {
  if [ -n "$1" ] && [ -f "$1" ]; then cksum < "$1"; else echo none; fi
}

start() {
  certificate="$(find_certificate)"
  if [ -z "$certificate" ]; then
    echo "coturn-start: no certificate for $domain in $search_dir yet; TURN over TLS starts once Caddy has one" >&2
    turnserver -c "$config" &
  elif [ -n "${TURN_TLS_CERT_FILE:-}" ]; then
    turnserver -c "$config" &
  else
    echo "coturn-start: TLS certificate $certificate" >&2
    turnserver -c "$config" --cert "$certificate" --pkey "${certificate%.crt}.key" &
  fi
  pid=$!
  echo "$pid" > "$pid_file"
  stamp="$(fingerprint "$certificate")"
}

stop() {
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

trap 'stop; exit 0' TERM INT
start
while kill -0 "$pid" 2>/dev/null; do
  sleep "$poll" &
  wait $! || true
  found="$(find_certificate)"
  if [ -z "$certificate" ] && [ -n "$found" ]; then
    echo "coturn-start: certificate for $domain appeared; restarting coturn with TLS" >&2
    stop
    start
  elif [ -n "$certificate" ] && [ "$(fingerprint "$certificate")" != "$stamp" ]; then
    echo "coturn-start: certificate renewed; coturn reloads it" >&2
    stamp="$(fingerprint "$certificate")"
    kill -USR2 "$pid"
  fi
done
wait "$pid"
