#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: boot_test
short_description: Boot a disk image or a kernel and initrd in qemu and wait for a console line
description:
  - Boots O(image) (a disk, on a throw-away snapshot so the image is never modified) or O(kernel) with O(initrd)
    in qemu with a serial console written to O(console_log), and waits for a line matching O(expect) (a login
    prompt, a marker a test init prints) within O(timeout) seconds.
  - Uses KVM only when it actually works. C(/dev/kvm) can exist while guests hang after the bootloader, so with
    O(accel=auto) the first boot on a build host is tried under KVM for O(kvm_probe_timeout) seconds; if the
    expected line does not come, the verdict is cached (per host kernel and qemu version) and the boot runs
    under TCG, as every later one on that host does.
  - Reports how long the boot took. A boot never changes anything, so C(changed) is always false.
version_added: 0.1.0
author: osimage.builder contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  image:
    description: Disk image to boot. Mutually exclusive with O(kernel).
    type: path
  image_format:
    description: Format of O(image).
    type: str
    choices: [raw, qcow2, vmdk, vpc]
    default: raw
  kernel:
    description: Kernel to boot directly.
    type: path
  initrd:
    description: Initial ramdisk for O(kernel).
    type: path
  append:
    description: Kernel command line for O(kernel).
    type: str
    default: console=ttyS0 panic=-1
  expect:
    description: Python regular expression a console line must match.
    type: str
    default: "login:"
  timeout:
    description: Seconds to wait for O(expect).
    type: int
    default: 300
  memory_mb:
    description: Guest memory.
    type: int
    default: 1024
  cpus:
    description: Guest CPUs.
    type: int
    default: 1
  accel:
    description: V(auto) (KVM when it works, else TCG), V(kvm) or V(tcg).
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  kvm_probe_timeout:
    description: Seconds a first boot under KVM may take before KVM counts as not working.
    type: int
    default: 30
  kvm_probe_cache:
    description: Where the KVM verdict is kept.
    type: path
    default: /var/cache/osimage/kvm-probe.json
  console_log:
    description: File the serial console is written to.
    type: path
    required: true
  qemu_args:
    description: Extra qemu arguments.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: partial
    details: >-
      Whether the guest boots and prints O(expect) cannot be predicted without booting it: in check mode nothing is
      booted and nothing is written (no console log, no KVM probe verdict); the inputs are checked and the qemu
      command that would run is returned as RV(command).
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Without a working KVM the boot runs under TCG (emulation), several times slower; the first boot on a host
    may also spend O(kvm_probe_timeout) seconds on the KVM probe.
  - Runs as any user that can read the image (and C(/dev/kvm) for KVM); the image itself is never written (qemu
    C(-snapshot)).
  - qemu runs in the background while the module watches O(console_log) for O(expect); it is stopped when the
    line comes or when O(timeout) passes.
seealso:
  - module: osimage.builder.disk_image
  - module: osimage.builder.kernel_build
  - module: osimage.builder.initramfs
  - module: osimage.builder.stemcell_package
requirements:
  - qemu-system-x86_64 (Debian package qemu-system-x86)
"""

EXAMPLES = r"""
- name: The stemcell reaches its login prompt
  osimage.builder.boot_test:
    image: /var/tmp/osimage/work/stemcell/root.img
    expect: "login:"
    timeout: 300
    console_log: /var/tmp/osimage/work/stemcell/console.log

- name: A kernel boots with a test initramfs that prints a marker and powers off
  osimage.builder.boot_test:
    kernel: /var/tmp/osimage/out/bzImage
    initrd: /var/tmp/osimage/out/test-initramfs.cpio.gz
    expect: OSIMAGE-BOOT-OK
    timeout: 120
    console_log: /var/tmp/osimage/out/kernel-boot.log
"""

RETURN = r"""
seconds:
  description: Seconds from starting qemu to the expected line.
  returned: success
  type: float
  sample: 11.5
accel:
  description: The accelerator the successful boot used.
  returned: success
  type: str
  sample: kvm
matched:
  description: The console line that matched.
  returned: success
  type: str
  sample: "localhost login:"
console_log:
  description: The console log.
  returned: always
  type: str
  sample: /var/tmp/osimage/work/stemcell/console.log
kvm_probe:
  description: The KVM verdict for this build host (works, unusable, absent) and whether it was cached.
  returned: when not in check mode
  type: dict
  sample:
    verdict: works
    cached: true
    key: "6.1.0-28-amd64|QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)"
command:
  description: The qemu command line.
  returned: always
  type: str
  sample: "qemu-system-x86_64 -accel kvm -m 1024 -smp 1 -display none -monitor none
    -serial file:/var/tmp/osimage/work/stemcell/console.log -no-reboot -nic none -cpu host -snapshot
    -drive file=/var/tmp/osimage/work/stemcell/root.img,format=raw,if=virtio"
"""

import json
import os
import platform
import re
import shlex
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.builder.plugins.module_utils._digest import write_text_atomically
from ansible_collections.osimage.builder.plugins.module_utils._mounts import Interrupted, signals_raise
from ansible_collections.osimage.builder.plugins.module_utils._runner import CommandRunner

QEMU = "qemu-system-x86_64"


def qemu_argv(p, accel, qemu=QEMU):
    argv = [qemu, "-accel", accel, "-m", str(p["memory_mb"]), "-smp", str(p["cpus"]),
            "-display", "none", "-monitor", "none", "-serial", "file:" + p["console_log"], "-no-reboot",
            "-nic", "none"]
    if accel == "kvm":
        argv += ["-cpu", "host"]
    if p["image"]:
        argv += ["-snapshot", "-drive", "file=%s,format=%s,if=virtio" % (p["image"], p["image_format"])]
    else:
        argv += ["-kernel", p["kernel"], "-append", p["append"]]
        if p["initrd"]:
            argv += ["-initrd", p["initrd"]]
    return argv + p["qemu_args"]


def boot(module, p, accel, timeout, qemu):
    """Run qemu until `expect` shows up on the console; (seconds, line) or
    (None, reason). qemu is always stopped."""
    if os.path.exists(p["console_log"]):
        os.unlink(p["console_log"])
    argv = qemu_argv(p, accel, qemu)
    pattern = re.compile(p["expect"])
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        with signals_raise():
            while True:
                elapsed = time.monotonic() - start
                text = ""
                if os.path.exists(p["console_log"]):
                    with open(p["console_log"], errors="replace") as f:
                        text = f.read()
                for line in text.splitlines():
                    if pattern.search(line):
                        return round(elapsed, 1), line.strip(), None
                if proc.poll() is not None:
                    out = proc.stdout.read().decode(errors="replace")
                    return None, None, "qemu exited (rc=%s) before %r appeared: %s" % (
                        proc.returncode, p["expect"], out.strip()[-500:])
                if elapsed > timeout:
                    return None, None, "%r did not appear within %d s" % (p["expect"], timeout)
                time.sleep(0.5)
    except Interrupted as exc:
        module.fail_json(msg="boot test interrupted (%s); qemu was stopped" % exc, console_log=p["console_log"])
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def probe_key(runner):
    _rc, out, _err = runner.run([QEMU, "--version"], "read qemu's version")
    return "%s|%s" % (platform.release(), out.splitlines()[0] if out else "")


def read_verdict(path, key):
    try:
        with open(path) as f:
            data = json.load(f)
        return data.get(key)
    except (OSError, ValueError):
        return None


def write_verdict(path, key, verdict):
    data = {}
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        pass
    data[key] = verdict
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # A temporary name of its own: builds on one host share the cache.
    write_text_atomically(path, json.dumps(data, indent=2, sort_keys=True))


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-n:])
    except OSError:
        return ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="path"),
            image_format=dict(type="str", default="raw", choices=["raw", "qcow2", "vmdk", "vpc"]),
            kernel=dict(type="path"),
            initrd=dict(type="path"),
            append=dict(type="str", default="console=ttyS0 panic=-1"),
            expect=dict(type="str", default="login:"),
            timeout=dict(type="int", default=300),
            memory_mb=dict(type="int", default=1024),
            cpus=dict(type="int", default=1),
            accel=dict(type="str", default="auto", choices=["auto", "kvm", "tcg"]),
            kvm_probe_timeout=dict(type="int", default=30),
            kvm_probe_cache=dict(type="path", default="/var/cache/osimage/kvm-probe.json"),
            console_log=dict(type="path", required=True),
            qemu_args=dict(type="list", elements="str", default=[]),
        ),
        mutually_exclusive=[("image", "kernel")],
        required_one_of=[("image", "kernel")],
        supports_check_mode=True,
    )
    p = module.params
    for key in ("image", "kernel", "initrd"):
        if p[key] and not os.path.isfile(p[key]):
            module.fail_json(msg="%s=%s does not exist" % (key, p[key]))
    try:
        re.compile(p["expect"])
    except re.error as exc:
        module.fail_json(msg="expect=%s is not a regular expression: %s" % (p["expect"], exc))
    runner = CommandRunner(module)
    qemu = runner.bin(QEMU)
    if module.check_mode:
        accel = "tcg" if p["accel"] == "auto" else p["accel"]
        module.exit_json(changed=False, skipped_boot=True, accel=accel, console_log=p["console_log"],
                         command=shlex.join(qemu_argv(p, accel)),
                         msg="check mode: not booted (a boot test writes its console log)")
    os.makedirs(os.path.dirname(p["console_log"]) or ".", exist_ok=True)

    probe = {"verdict": "absent", "cached": False}
    accel = p["accel"]
    if accel == "auto":
        accel = "tcg"
        if os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK):
            key = probe_key(runner)
            verdict = read_verdict(p["kvm_probe_cache"], key)
            probe = {"verdict": verdict, "cached": verdict is not None, "key": key}
            if verdict is None:
                seconds, line, why = boot(module, p, "kvm", min(p["kvm_probe_timeout"], p["timeout"]), qemu)
                verdict = "works" if seconds is not None else "unusable"
                write_verdict(p["kvm_probe_cache"], key, verdict)
                probe.update(verdict=verdict, reason=why)
                if seconds is not None:
                    module.exit_json(changed=False, seconds=seconds, matched=line, accel="kvm", kvm_probe=probe,
                                     console_log=p["console_log"], command=shlex.join(qemu_argv(p, "kvm")))
            if verdict == "works":
                accel = "kvm"
    seconds, line, why = boot(module, p, accel, p["timeout"], qemu)
    command = shlex.join(qemu_argv(p, accel))
    if seconds is None:
        module.fail_json(msg="boot test failed under %s: %s; console log %s ends with:\n%s"
                             % (accel, why, p["console_log"], tail(p["console_log"])),
                         console_log=p["console_log"], accel=accel, kvm_probe=probe, command=command)
    module.exit_json(changed=False, seconds=seconds, matched=line, accel=accel, kvm_probe=probe,
                     console_log=p["console_log"], command=command)


if __name__ == "__main__":
    main()
