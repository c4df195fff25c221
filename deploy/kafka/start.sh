#!/usr/bin/env bash
# Starts the docker-compose stack's Kafka (apache/kafka image, KRaft, one
# node) with SASL_SSL, SCRAM-SHA-512 and ACLs: deploy/kafka/server.properties
# plus the TLS key and certificate from the secret files, written to a
# configuration file only this container's user can read. On the first start
# it formats the log directory with the administrator's SCRAM credential,
# which is how a KRaft cluster gets its first user (every other user and
# every ACL is made by `dmicctl kafka-setup`, as that administrator).
# docs/security.md, Kafka.
set -euo pipefail

secrets=/run/secrets
conf=/tmp/dmic-kafka/server.properties
umask 077
mkdir -p "$(dirname "$conf")"

# A PEM file as one properties value: Java's properties format reads "\n"
# as a line break.
pem() { awk 'BEGIN { ORS = "\\n" } { print }' "$1"; }

{
  cat /etc/dmic/kafka/server.properties
  echo
  printf 'ssl.keystore.key=%s\n' "$(pem "$secrets/kafka-server.key")"
  printf 'ssl.keystore.certificate.chain=%s\n' "$(pem "$secrets/kafka-server.crt")"
} > "$conf"

if [ ! -e /var/lib/kafka/data/meta.properties ]; then
  # kafka-storage takes the credential on its command line, and this is the
  # only place a dmic password passes one: once, at the first start, inside
  # this container, where nothing else runs to read it. Kafka offers no other
  # way to seed the first SCRAM user of a KRaft cluster.
  admin_password=$(cat "$secrets/kafka-admin.password")
  /opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$CLUSTER_ID" --config "$conf" \
    --add-scram "SCRAM-SHA-512=[name=dmic-admin,password=$admin_password]"
  unset admin_password
fi

exec /opt/kafka/bin/kafka-server-start.sh "$conf"
