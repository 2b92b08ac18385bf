#!/bin/sh
# Runs once, at the first boot of a VM made from this image: host keys are
# made here, never in the image.
set -e
ssh-keygen -A
touch /root/firstboot_done
