#!/usr/bin/env bash
# Makes sure a clickhouse-server binary exists for `make run` and `make test`.
# If something already answers at CLICKHOUSE_ADDR, nothing is needed. On Debian
# or Ubuntu the package is installed (as root, or with sudo); elsewhere this
# prints what to do.
set -euo pipefail
addr="${CLICKHOUSE_ADDR:-localhost:9000}"
host="${addr%:*}"; port="${addr##*:}"
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  exit 0
fi
if command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/bin/clickhouse-server ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "clickhouse-server is not installed; installing it with apt-get (Debian package)…" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
  exit 0
fi
cat >&2 <<MSG
No ClickHouse answers at $addr and clickhouse-server is not installed.
Install ClickHouse (https://clickhouse.com/docs/en/install), or point
CLICKHOUSE_ADDR at a running server, then run this again.
MSG
exit 1
