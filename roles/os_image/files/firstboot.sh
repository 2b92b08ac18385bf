#!/bin/sh
# Runs once, at the first boot of a VM made from this image: host keys are
# made here, never in the image (SSH host keys, the NVMe host identity).
set -e
ssh-keygen -A
# The NVMe host identity (NQN and host id) is per VM too: nvme-cli made one
# when it was installed into the image, clean_machine_id removed it.
if command -v nvme >/dev/null 2>&1; then
  mkdir -p /etc/nvme
  [ -s /etc/nvme/hostnqn ] || nvme gen-hostnqn > /etc/nvme/hostnqn
  [ -s /etc/nvme/hostid ] || sed -n 's/.*:uuid://p' /etc/nvme/hostnqn > /etc/nvme/hostid
fi
touch /root/firstboot_done
