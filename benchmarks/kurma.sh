#!/usr/bin/env bash
# Prints the KurmaOS pipeline's figures on this machine with the small test
# config (the shared guest kernel's config, not the shipped KurmaOS one):
# cold (fresh work and output dirs: stage4 bootstrap, kernel objects as the
# cache has them), warm (stage4 and kernel kept, ACIs and initrd rebuilt:
# kurma_resume_from=acis), and a no-op re-run. Sizes of the artifacts last.
# Usage: benchmarks/kurma.sh   (run ./osimage setup first; needs the archive)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
base=$(mktemp -d /var/tmp/osimage-bench-kurma.XXXXXX)
cache=${OSIMAGE_CACHE_DIR:-/var/cache/osimage}
cat > "$base/vars.json" <<JSON
{"osimage_hosts": "localhost", "osimage_work_dir": "$base/work", "osimage_output_dir": "$base/output",
 "osimage_cache_dir": "$cache",
 "kurma_stage4_packages": ["busybox", "chrony", "openssh-server", "jq", "e2fsprogs"],
 "kurma_kernel_config": "tinyconfig",
 "kurma_kernel_config_fragments": ["$PWD/tests/integration/files/kernel-guest.config"],
 "kurma_kernel_localversion": "-osimage-guest", "kurma_kernel_build_dir": "$cache/kernel-guest",
 "kurma_kernel_dest_dir": "$base/kernel", "kurma_release_dest_dir": "$base/release-kernel"}
JSON

run() {  # label, extra ansible-playbook arguments...
  local label=$1 start end out
  shift
  start=$(date +%s.%N)
  out=$(ansible-playbook playbooks/build-kurma.yml -e "@$base/vars.json" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%-8s %7.1f s  %s\n' "$label" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" \
    "$(echo "$out" | grep -Eo 'changed=[0-9]+' | tail -1)"
}

echo "KurmaOS pipeline (test config) on $(nproc) cores, $(date -u +%Y-%m-%d)"
run cold
run warm -e kurma_resume_from=acis
run no-op
find "$base/output" -maxdepth 1 -type f \( -name "*.aci" -o -name "kurma*" \) -printf "  %-40f %10s bytes\n" | sort
rm -rf "$base"
