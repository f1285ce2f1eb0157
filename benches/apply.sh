#!/usr/bin/env bash
# Benchmark: 5,000 PATCHes at concurrency 1, 4 and 16 against the embedded server and scim2-server.
set -euo pipefail
cd "$(dirname "$0")/.."
server="$(scripts/scim2/install "${SCIMFORM_SCIM2_DIR:-${TMPDIR:-/tmp}/scimform-scim2}")"
port=18099
# scim2-server's development server answers HTTP/1.0, a connection per request, and listens
# with socketserver's backlog of 5: at concurrency 4 and more the queue overflows, and a
# dropped SYN is sent again only after a second, at random for either client (3,615 drops in
# one run of this bench). A deployment's server listens deeper; so does this one, so the rates
# measure the service and the clients, not the kernel's SYN retry timer.
"$(dirname "$server")/python" -c '
import socketserver, sys
socketserver.TCPServer.request_queue_size = 128
from scim2_server.testserver.cli import main
sys.exit(main())' --hostname 127.0.0.1 --port "$port" --bearer-token bench >/dev/null 2>&1 &
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
