#!/usr/bin/env bash
# Benchmark: `scimform plan` against the raw reads it needs, side by side in one run.
#
# Samba AD (10,000 users, started as the tests start it) is the source, scim2-server (the
# third-party SCIM server the tests use) the target, loaded once with the same people by
# `scimform apply`. Then, each timed ROUNDS times (the median is reported):
#   - a raw paged LDAP read of the users (ldapsearch, 1,000 a page, the attributes mapped);
#   - a raw page walk of the SCIM service (one request after another, `filter.maxResults` a page);
#   - `scimform plan --no-state` (no drift: "No changes.").
# and prints the plan's time as a ratio of the slower raw read and of their sum.
#
#   benches/plan-vs-reads.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
ad_dir="${SCIMFORM_AD_DIR:-${TMPDIR:-/tmp}/scimform-ad}"
scripts/samba/ad start "$ad_dir" >/dev/null
# shellcheck disable=SC1091
source "$ad_dir/env"
scripts/scim2/install "${TMPDIR:-/tmp}/scimform-scim2" >/dev/null
cargo build --locked --release --quiet
bin="$PWD/target/release/scimform"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# A listen queue 128 deep (see the script): scimform asks for pages 4 at a time.
scripts/scim2/serve "${TMPDIR:-/tmp}/scimform-scim2" --hostname 127.0.0.1 --port "$port" --bearer-token bench-token >"$work/scim2.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
export SCIM_URL="http://127.0.0.1:$port/v2" SCIM_TOKEN=bench-token
for _ in $(seq 50); do
  curl -sf -H "Authorization: Bearer $SCIM_TOKEN" "$SCIM_URL/ServiceProviderConfig" >/dev/null && break
  sleep 0.2
done

cat >"$work/bench.yaml" <<'EOF'
version: 1
sources:
  ad:
    kind: ldap
    url: ${env:SCIMFORM_TEST_AD_URL}
    bind_dn: ${env:SCIMFORM_TEST_AD_BIND_DN}
    password: ${env:SCIMFORM_TEST_AD_PASSWORD}
    base_dn: OU=Staff,DC=corp,DC=test
    page_size: 1000
target:
  kind: scim
  base_url: ${env:SCIM_URL}
  auth: { bearer_token: "${env:SCIM_TOKEN}" }
  concurrency: 4
users:
  source: ad
  external_id: "{{ objectGUID }}"
  attributes:
    userName: "{{ mail | lower }}"
    displayName: "{{ givenName }} {{ sn }}"
    name.givenName: givenName
    name.familyName: sn
    title: title
  create_disabled: true
  deprovision: { action: disable, max_percent: 100 }
EOF

echo "machine: $(nproc) cores, $(uname -m); $SCIMFORM_TEST_AD_USERS AD users; $rounds rounds, medians"
load_start=$(date +%s.%N)
"$bin" apply -f "$work/bench.yaml" --auto-approve --no-state -q >/dev/null 2>"$work/load.log"
echo "load: $(awk -v a="$load_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s to create the people in scim2-server"

# The seconds a command takes, median of $rounds.
median() {
  local times=()
  for _ in $(seq "$rounds"); do
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

ldap_read() {
  ldapsearch -x -LLL -o ldif-wrap=no -H "$SCIMFORM_TEST_AD_URL" -D "$SCIMFORM_TEST_AD_BIND_DN" \
    -w "$SCIMFORM_TEST_AD_PASSWORD" -b "OU=Staff,DC=corp,DC=test" -E pr=1000/noprompt \
    "(&(objectClass=user)(!(objectClass=computer)))" objectGUID mail givenName sn title userAccountControl
}

scim_walk() {
  python3 - "$SCIM_URL" "$SCIM_TOKEN" <<'PY'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
def get(path):
    request = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)
page = get("/ServiceProviderConfig")["filter"]["maxResults"]
start, read = 1, 0
while True:
    body = get(f"/Users?startIndex={start}&count={page}")
    got = len(body.get("Resources", []))
    read += got
    start += got
    if got == 0 or read >= body["totalResults"]:
        break
print(read)
PY
}

plan() {
  "$bin" plan -f "$work/bench.yaml" --no-state -q 2>/dev/null
}

check="$(plan)"
[[ "$check" == "No changes. The target matches the manifest." ]] || { echo "unexpected plan: $check" >&2; exit 1; }
ldap_s=$(median ldap_read)
scim_s=$(median scim_walk)
plan_s=$(median plan)
echo "raw LDAP paged read:      ${ldap_s} s"
echo "raw SCIM page walk:       ${scim_s} s"
echo "scimform plan --no-state: ${plan_s} s"
awk -v l="$ldap_s" -v s="$scim_s" -v p="$plan_s" 'BEGIN {
  slower = l > s ? l : s
  printf "plan / slower raw read:   %.2f\nplan / sum of raw reads:  %.2f\n", p / slower, p / (l + s)
}'
