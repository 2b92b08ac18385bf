#!/usr/bin/env bash
# Prints the OS image pipeline's cold, warm and no-op build times on this
# machine (local inventory). Not a test: it measures.
#   cold:  no bootstrap tarball, no package cache (everything downloaded)
#   warm:  bootstrap tarball and packages cached, OS image rebuilt (force)
#   no-op: nothing changed; must report changed=0
# Usage: benchmarks/os_image.sh [suite]   (run ./osimage setup first)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
suite=${1:-bookworm}
base=$(mktemp -d /var/tmp/osimage-bench.XXXXXX)
vars=$(printf '{"os_image_suite":"%s","osimage_work_dir":"%s/work","osimage_cache_dir":"%s/cache","osimage_output_dir":"%s/output"}' \
  "$suite" "$base" "$base" "$base")

run() {  # label, extra vars -> prints seconds and the recap's changed count
  local label=$1 extra=$2 start end log
  log="$base/$label.log"
  start=$(date +%s.%N)
  ansible-playbook playbooks/build-os-image.yml -e "$vars" -e "$extra" > "$log" 2>&1 || {
    echo "$label build failed, see $log" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%-6s %7.1f s  %s\n' "$label" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" \
    "$(grep -Eo 'changed=[0-9]+' "$log" | tail -1)"
}

echo "OS image ($suite) on $(nproc) cores, $(date -u +%Y-%m-%d)"
run cold '{}'
run warm '{"os_image_force": true}'
run no-op '{}'
stat -c %s "$base/output"/*.tgz | awk '{printf "size   %.1f MiB\n", $1/1048576}'
rm -rf "$base"
