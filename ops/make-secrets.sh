#!/usr/bin/env sh
# Once, on the operators' machine, before the first `docker compose up`:
# every secret the stack mounts, into ./secrets (or $SECRETS_DIR).
#   keys/        each identity's private signing key (connectors, teams,
#                workers, operators); hand each team its own file
#   trust.json   the trust store: their public keys (workers and teams read it)
#   scram/       a SCRAM-SHA-512 password per Kafka principal (hub acls)
#   tls/         a private CA, each broker's certificate (kafka-1..3), the
#                administrator's and the registry's client certificates
#                (mutual TLS); TLS_EXTRA_HOSTS=",name,..." adds names or
#                addresses to the brokers' (the cluster test: 127.0.0.1)
#   pii-key      the key that hashes personal data (HUB_PII_KEY_FILE)
#   grafana-admin-password
# Existing files are kept: run it again after adding a team or a connector.
set -eu
cd "$(dirname "$0")/.."
HUB="${HUB:-.venv/bin/hub}"
OUT="${SECRETS_DIR:-secrets}"
umask 077
mkdir -p "$OUT"
HUB_KEYS_DIR="$OUT/keys" HUB_TRUST_FILE="$OUT/trust.json" $HUB keys provision
$HUB acls --make-passwords "$OUT/scram"
$HUB certs --out "$OUT/tls" --server "kafka-1=kafka-1,localhost${TLS_EXTRA_HOSTS:-}" \
  --server "kafka-2=kafka-2,localhost${TLS_EXTRA_HOSTS:-}" --server "kafka-3=kafka-3,localhost${TLS_EXTRA_HOSTS:-}" \
  --client hub-admin --client schema-registry
for name in kafka-1 kafka-2 kafka-3 hub-admin schema-registry; do  # Kafka's PEM keystores: the key, then its certificate
  cat "$OUT/tls/$name.key" "$OUT/tls/$name.pem" > "$OUT/tls/$name.keystore.pem"
done
[ -f "$OUT/pii-key" ] || python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$OUT/pii-key"
[ -f "$OUT/grafana-admin-password" ] || python3 -c 'import secrets; print(secrets.token_urlsafe(24))' \
  > "$OUT/grafana-admin-password"
# Public halves are for everyone; the containers run as uid 10001 (see Dockerfile).
chmod 644 "$OUT/trust.json" "$OUT/tls/ca.pem"
if [ "$(id -u)" = 0 ]; then chown -R 10001 "$OUT"; else
  echo "note: the containers run as uid 10001: sudo chown -R 10001 $OUT (or use Docker's user namespaces)" >&2; fi
echo "secrets in $OUT"
