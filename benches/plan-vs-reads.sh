#!/usr/bin/env bash
# Benchmark: `scimform plan` against the raw reads it needs, side by side in one run.
#
# Samba AD (10,000 users, started as the tests start it) is the source, scim2-server (the
# third-party SCIM server the tests use) the target, loaded once with the same people by
# `scimform apply`. Then, in each of ROUNDS rounds, one after another:
#   - a raw paged LDAP read of the users (ldapsearch, 1,000 a page, the attributes mapped);
#   - a raw page walk of the SCIM service (one request after another, `filter.maxResults` a page);
#   - `scimform plan --no-state` (no drift: "No changes."), one page at a time as the raw walk
#     reads them (`target.concurrency: 1`);
#   - the same plan at the default `target.concurrency: 4`, for comparison: scim2-server serves
#     each request in a Python thread under one interpreter lock, so pages asked for side by side
#     are served by turns, at 15-20 % more of its CPU on two cores.
# The order turns from round to round, so the machine's drift (this 2-core VM's speed moves by
# half within minutes) falls on all alike. It prints each one's median, the plan's time as a
# ratio of the slower raw read and of their sum, and the median and range of each round's own
# ratio to its slower raw read.
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
# A listen queue 128 deep (see the script): the second plan asks for pages 4 at a time.
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
  concurrency: 1
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

# The seconds a command takes.
seconds() {
  local start
  start=$(date +%s.%N)
  "$@" >/dev/null
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'
}

# The median of the numbers given, and with --range also the smallest and the largest.
median() {
  local range=false
  [[ "$1" == --range ]] && { range=true; shift; }
  printf '%s\n' "$@" | sort -n | awk -v range="$range" '{ a[NR] = $1 } END {
    if (range == "true") printf "%.2f (%.2f-%.2f)\n", a[int((NR + 1) / 2)], a[1], a[NR]
    else print a[int((NR + 1) / 2)]
  }'
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

sed 's/^  concurrency: 1$/  concurrency: 4/' "$work/bench.yaml" >"$work/bench-4.yaml"

plan() {
  "$bin" plan -f "$work/bench.yaml" --no-state -q 2>/dev/null
}

plan_4() {
  "$bin" plan -f "$work/bench-4.yaml" --no-state -q 2>/dev/null
}

for check in "$(plan)" "$(plan_4)"; do
  [[ "$check" == "No changes. The target matches the manifest." ]] || { echo "unexpected plan: $check" >&2; exit 1; }
done
orders=("ldap_read scim_walk plan plan_4" "scim_walk plan plan_4 ldap_read" "plan plan_4 ldap_read scim_walk"
  "plan_4 ldap_read scim_walk plan")
ldap_times=() scim_times=() plan_times=() plan_4_times=() ratios=() ratios_4=()
# Each round's plan over its slower raw read.
ratio() { awk -v l="$t_ldap_read" -v s="$t_scim_walk" -v p="$1" 'BEGIN { printf "%.3f", p / (l > s ? l : s) }'; }
for round in $(seq "$rounds"); do
  for what in ${orders[$((round % 4))]}; do
    declare "t_$what=$(seconds "$what")"
  done
  ldap_times+=("$t_ldap_read") scim_times+=("$t_scim_walk") plan_times+=("$t_plan") plan_4_times+=("$t_plan_4")
  ratios+=("$(ratio "$t_plan")") ratios_4+=("$(ratio "$t_plan_4")")
done
ldap_s=$(median "${ldap_times[@]}")
scim_s=$(median "${scim_times[@]}")
plan_s=$(median "${plan_times[@]}")
plan_4_s=$(median "${plan_4_times[@]}")
echo "raw LDAP paged read:      ${ldap_s} s"
echo "raw SCIM page walk:       ${scim_s} s"
echo "scimform plan --no-state: ${plan_s} s"
awk -v l="$ldap_s" -v s="$scim_s" -v p="$plan_s" 'BEGIN {
  slower = l > s ? l : s
  printf "plan / slower raw read:   %.2f\nplan / sum of raw reads:  %.2f\n", p / slower, p / (l + s)
}'
echo "each round's plan / its slower raw read: $(median --range "${ratios[@]}")"
echo "the plan at concurrency 4: ${plan_4_s} s; each round's / its slower raw read: $(median --range "${ratios_4[@]}")"
