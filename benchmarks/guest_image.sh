#!/usr/bin/env bash
# Prints the guest image pipeline's figures on this machine (local inventory):
#   cold:  from nothing (empty caches: bootstrap, kernel objects)
#   warm:  bootstrap, packages and kernel objects cached, everything rebuilt (guest_image_force)
#   no-op: nothing changed; must report changed=0
#   the image's size against the rootfs's
# The agent is a stand-in script (the build needs one; its sha256 is taken here).
# Usage: benchmarks/guest_image.sh   (run ./osimage setup first)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
base=$(mktemp -d /var/tmp/osimage-bench.XXXXXX)
printf '#!/bin/sh\necho agent\n' > "$base/agent"
sha=$(sha256sum "$base/agent" | cut -d' ' -f1)
vars=$(printf '{"osimage_work_dir":"%s/work","osimage_cache_dir":"%s/cache","osimage_output_dir":"%s/output",'\
'"guest_image_agent_src":"%s/agent","guest_image_agent_sha256":"%s"}' "$base" "$base" "$base" "$base" "$sha")

run() {  # label, extra vars
  local label=$1 extra=$2 start end log
  log="$base/$label.log"
  start=$(date +%s.%N)
  ansible-playbook playbooks/build-guest-image.yml -e "$vars" -e "$extra" > "$log" 2>&1 || {
    echo "$label build failed, see $log" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%-6s %7.1f s  %s\n' "$label" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" \
    "$(grep -Eo 'changed=[0-9]+' "$log" | tail -1)"
}

echo "guest image (debian bookworm, ext4 + DAX, initrd, kernel) on $(nproc) cores, $(date -u +%Y-%m-%d)"
run cold '{}'
run warm '{"guest_image_force": true}'
run no-op '{}'
root=$(find "$base/work/guest_image" -maxdepth 2 -name rootfs -type d | head -1)
printf 'rootfs %.1f MiB (du)\n' "$(du -sk "$root" | awk '{print $1/1024}')"
for f in container.img kata-containers-initrd.img; do
  printf '%-6s %.1f MiB  %s\n' "" "$(stat -c %s "$base/output/$f" | awk '{print $1/1048576}')" "$f"
done
rm -rf "$base"
