#!/usr/bin/env bash
# Prints the stemcell pipeline's figures on this machine (local inventory):
#   cold:  from nothing (empty caches, no OS image)
#   warm:  OS image and packages cached, stemcell rebuilt (stemcell_force)
#   no-op: nothing changed; must report changed=0
#   the stemcell's size and the boot test's time to the login prompt
# Usage: benchmarks/stemcell.sh   (run ./osimage setup first)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
base=$(mktemp -d /var/tmp/osimage-bench.XXXXXX)
vars=$(printf '{"osimage_work_dir":"%s/work","osimage_cache_dir":"%s/cache","osimage_output_dir":"%s/output"}' \
  "$base" "$base" "$base")

run() {  # label, extra vars
  local label=$1 extra=$2 start end log
  log="$base/$label.log"
  start=$(date +%s.%N)
  ansible-playbook playbooks/build-stemcell.yml -e "$vars" -e "$extra" > "$log" 2>&1 || {
    echo "$label build failed, see $log" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%-6s %7.1f s  %s\n' "$label" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" \
    "$(grep -Eo 'changed=[0-9]+' "$log" | tail -1)"
}

echo "stemcell (openstack/kvm raw, debian bookworm) on $(nproc) cores, $(date -u +%Y-%m-%d)"
run cold '{}'
run warm '{"stemcell_force": true}'
run no-op '{}'
stat -c %s "$base/output"/bosh-stemcell-*.tgz | awk '{printf "size   %.1f MiB\n", $1/1048576}'
grep -o 'boot test: .*' "$base/warm.log" | head -1 | sed 's/ (console log.*//'
rm -rf "$base"
