#!/usr/bin/env bash
# Makes the passwords of dmic's ClickHouse users for docker-compose, in
# deploy/secrets/clickhouse/ (or the folder given):
#
#   dmic_migrator dmic_writer dmic_reader analyst
#                   one password per user (48 hex digits, mode 0600), given
#                   to the services as Docker secrets
#   users.xml       their SHA-256 hashes, merged into ClickHouse's users.d
#                   (ClickHouse holds hashes, never the passwords)
#   analyst.xml     a clickhouse-client configuration for the analyst on the
#                   host (localhost:9000, the port compose binds to 127.0.0.1)
#
# A password that exists is kept; delete its file and run this again to
# rotate it (docs/security.md, ClickHouse). The users are those of
# services/internal/chaccess; a test runs this script and checks that a real
# ClickHouse takes what it makes.
set -euo pipefail
dir="${1:-$(dirname "$0")/clickhouse}"
users=(dmic_migrator dmic_writer dmic_reader analyst)
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
for u in "${users[@]}"; do
  if [ ! -s "$dir/$u" ]; then
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > "$dir/$u"
    echo >> "$dir/$u"
  fi
  chmod 600 "$dir/$u"
done
password() { tr -d '\n' < "$dir/$1"; }
{
  echo '<?xml version="1.0"?>'
  echo "<!-- The password hashes of dmic's ClickHouse users. -->"
  echo '<yandex>'
  echo '    <users>'
  for u in "${users[@]}"; do
    h=$(password "$u" | sha256sum | cut -d' ' -f1)
    echo "        <$u><password_sha256_hex>$h</password_sha256_hex></$u>"
  done
  echo '    </users>'
  echo '</yandex>'
} > "$dir/users.xml"
cat > "$dir/analyst.xml" <<XML
<?xml version="1.0"?>
<!-- A clickhouse-client configuration written by dmic. It holds a password: keep it mode 0600. -->
<config>
    <host>localhost</host>
    <port>9000</port>
    <user>analyst</user>
    <password>$(password analyst)</password>
</config>
XML
chmod 600 "$dir/users.xml" "$dir/analyst.xml"
if [ "$(id -u)" -eq 0 ]; then
  # The services run as the image's nonroot user (65532), ClickHouse as 101:
  # a bind-mounted secret keeps the host's owner and mode.
  chown 65532:65532 "$dir"/dmic_migrator "$dir"/dmic_writer "$dir"/dmic_reader
  chown 101:101 "$dir/users.xml"
else
  echo "Now, as root, give the containers' users their files (a bind-mounted secret keeps its owner and mode):" >&2
  echo "  sudo chown 65532:65532 $dir/dmic_migrator $dir/dmic_writer $dir/dmic_reader   # the dmic image's nonroot user" >&2
  echo "  sudo chown 101:101 $dir/users.xml                                           # the clickhouse user of the ClickHouse image" >&2
fi
