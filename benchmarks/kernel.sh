#!/usr/bin/env bash
# Prints kernel_build's figures on this machine: a cold build (fresh object
# tree, empty ccache), a no-change re-run, and a ccache-warm rebuild (fresh
# object tree, warm ccache), of a tinyconfig-based kernel from Debian's
# linux-source-6.1. Then the stage1-kvm playbook's no-op re-run time.
# Usage: benchmarks/kernel.sh   (run ./osimage setup first)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
src=/usr/src/linux-source-6.1.tar.xz
sha=$(sha256sum "$src" | cut -d' ' -f1)
base=$(mktemp -d /var/tmp/osimage-bench.XXXXXX)
frag="$PWD/tests/integration/files/kernel-boot.config"

build() {  # label, build dir, dest dir
  local start end out
  start=$(date +%s.%N)
  out=$(ansible localhost -c local -i localhost, -e ansible_python_interpreter="$(command -v python3)" \
    -m osimage.builder.kernel_build -a "{\"source\": \"$src\", \"source_sha256\": \"$sha\",
      \"build_dir\": \"$2\", \"dest_dir\": \"$3\", \"config\": \"tinyconfig\", \"config_fragments\": [\"$frag\"],
      \"ccache_dir\": \"$base/ccache\"}" 2>&1) || { echo "$out" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%-22s %7.1f s  %s\n' "$1" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" \
    "$(echo "$out" | grep -Eo '"?changed"?: (true|false)' | head -1)"
}

echo "kernel_build (tinyconfig + boot fragment, linux-source-6.1) on $(nproc) cores, $(date -u +%Y-%m-%d)"
build cold "$base/build1" "$base/out1"
build no-change "$base/build1" "$base/out1"
build ccache-warm "$base/build2" "$base/out2"
rm -rf "$base"
