#!/usr/bin/env bash
# Benchmark: 5,000 PATCHes at concurrency 1, 4 and 16 against the embedded server and scim2-server.
set -euo pipefail
cd "$(dirname "$0")/.."
port=18099
dir="${SCIMFORM_SCIM2_DIR:-${TMPDIR:-/tmp}/scimform-scim2}"
scripts/scim2/install "$dir" >/dev/null
# A listen queue 128 deep (see the script); the overflows counted below should be 0.
scripts/scim2/serve "$dir" --hostname 127.0.0.1 --port "$port" --bearer-token bench >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -sf -H "Authorization: Bearer bench" "http://127.0.0.1:$port/v2/ServiceProviderConfig" >/dev/null && break
  sleep 0.2
done
echo "machine: $(nproc) cores, $(uname -m); client, servers and benchmark share them"
overflows() { awk 'NR % 2 == 1 { split($0, h) } NR % 2 == 0 { for (i = 1; i <= NF; i++) if (h[i] == "ListenOverflows") print $i }' /proc/net/netstat 2>/dev/null || echo 0; }
before="$(overflows)"
SCIM2_SERVER_URL="http://127.0.0.1:$port/v2" SCIM2_SERVER_TOKEN=bench cargo bench --locked --bench apply
echo "listen queue overflows on this machine during the bench: $(($(overflows) - before))"
