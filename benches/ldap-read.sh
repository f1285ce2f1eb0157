#!/usr/bin/env bash
# Benchmark: read 10,000 users from Samba's AD DC (started like the tests do) with the LDAP source.
set -euo pipefail
cd "$(dirname "$0")/.."
ad_dir="${SCIMFORM_AD_DIR:-${TMPDIR:-/tmp}/scimform-ad}"
scripts/samba/ad start "$ad_dir" >/dev/null
# shellcheck disable=SC1091
source "$ad_dir/env"
echo "machine: $(nproc) cores, $(uname -m)"
cargo bench --locked --bench ldap_read
