"""The BOSH os_image acceptance items this collection implements, checked on
an unpacked image root (bosh-stemcell/spec/support/os_image_shared_examples.rb
is the reference; stig/CIS ids as there). Used by the pytest suite, by the
molecule verify step (`python3 -m tests.os_image_spec ROOT`) and later by the
stemcell checks on a mounted disk.

Each check is a function of the root that raises AssertionError; `run_all`
returns the failures so one run reports every broken item."""

import os
import re
import stat
import subprocess
import sys

ALLOWED_NOLOGIN = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
FORBIDDEN_PACKAGES = ["tftp", "tftpd", "tftp-server", "atftp", "atftpd", "tftp-hpa", "vsftpd", "ftpd",
                      "telnet-server", "telnetd", "telnetd-ssl", "inetutils-telnetd", "mactelnet-server",
                      "gconf2", "rsh-server", "xinetd"]


def read(root, path):
    with open(os.path.join(root, path.lstrip("/")), errors="replace") as f:
        return f.read()


def mode(root, path):
    return stat.S_IMODE(os.lstat(os.path.join(root, path.lstrip("/"))).st_mode)


def owner(root, path):
    st = os.lstat(os.path.join(root, path.lstrip("/")))
    return st.st_uid, st.st_gid


def passwd(root):
    return [line.split(":") for line in read(root, "/etc/passwd").splitlines() if line and not line.startswith("#")]


def groups(root):
    return {g[0]: g for g in (line.split(":") for line in read(root, "/etc/group").splitlines() if line)}


def user(root, name):
    return next((u for u in passwd(root) if u[0] == name), None)


def member_of(root, name, group):
    g = groups(root).get(group)
    u = user(root, name)
    return g is not None and (name in g[3].split(",") or (u is not None and u[3] == g[2]))


def installed(root):
    text = read(root, "/var/lib/dpkg/status")
    names = set()
    for stanza in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Status") == "install ok installed":
            names.add(fields.get("Package"))
    return names


# --- checks ---------------------------------------------------------------

def check_base_tools(root):
    """dig (required by the agent) and crontab are installed."""
    for tool in ("usr/bin/dig", "usr/bin/crontab"):
        assert os.path.exists(os.path.join(root, tool)), "%s missing" % tool


def check_sshd_config(root):
    """base_ssh (stig V-38613 V-38484 V-38614 V-38612 V-38615 V-38611 V-38608 V-38616 V-38610 V-38607)."""
    assert mode(root, "/etc/ssh/sshd_config") == 0o600, "sshd_config is not 0600"
    text = read(root, "/etc/ssh/sshd_config")
    for line in ("PermitRootLogin no", "PrintLastLog yes", "X11Forwarding no", "MaxAuthTries 3",
                 "PermitEmptyPasswords no", "HostbasedAuthentication no", "Banner /etc/issue.net",
                 "IgnoreRhosts yes", "ClientAliveInterval 900", "PermitUserEnvironment no",
                 "ClientAliveCountMax 0", "Protocol 2", "AllowGroups bosh_sshers", "DenyUsers root",
                 "PasswordAuthentication no", "UseDNS no"):
        assert re.search("^%s$" % re.escape(line), text, re.M), "sshd_config lacks %r" % line
    assert not re.search(r"^X11DisplayOffset", text, re.M)
    assert not re.search(r"HostKey /etc/ssh/ssh_host_dsa_key$", text, re.M)
    assert sorted(re.findall(r"^HostKey.*", text, re.M)) == [
        "HostKey /etc/ssh/ssh_host_ecdsa_key", "HostKey /etc/ssh/ssh_host_ed25519_key",
        "HostKey /etc/ssh/ssh_host_rsa_key"]


def check_banners(root):
    """CIS-11.1: /etc/issue and /etc/issue.net warn, /etc/motd is empty; all root-owned 0644."""
    for path in ("/etc/issue", "/etc/issue.net"):
        text = read(root, path)
        assert "Unauthorized use is strictly prohibited. All access and activity" in text
        assert "is subject to logging and monitoring." in text
    assert read(root, "/etc/motd") == ""
    for path in ("/etc/issue", "/etc/issue.net", "/etc/motd"):
        assert mode(root, path) == 0o644 and owner(root, path) == (0, 0), path


def check_no_ssh_host_keys(root):
    """Host keys are made at first boot, never shipped."""
    keys = [n for n in os.listdir(os.path.join(root, "etc/ssh")) if n.startswith("ssh_host_")]
    assert keys == [], "SSH host keys in the image: %s" % keys


def check_sysctl(root):
    """bosh_sysctl (stig V-38511 V-38596 V-38539 V-38546; CIS-7.3.2)."""
    text = read(root, "/etc/sysctl.d/60-bosh-sysctl.conf")
    for line in ("net.ipv4.ip_forward=0", "kernel.randomize_va_space=2", "net.ipv4.tcp_syncookies=1",
                 "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                 "net.ipv4.tcp_keepalive_time=120", "net.ipv4.tcp_keepalive_intvl=30",
                 "net.ipv4.tcp_keepalive_probes=8", "kernel.keys.root_maxkeys=1000000",
                 "kernel.keys.maxkeys=1000000", "kernel.dmesg_restrict=1"):
        assert re.search("^%s$" % re.escape(line), text, re.M), "sysctl lacks %s" % line
    assert re.search(r"^\s*net\.ipv6\.conf\.all\.accept_redirects\s*=", text, re.M)


def check_file_modes(root):
    """stig V-38443 V-38448 V-38449 V-38502..V-38504 V-38450 V-38451 V-38457 V-38458 V-38459 V-38461."""
    for path in ("/etc/shadow", "/etc/gshadow"):
        assert mode(root, path) == 0, "%s is %o, not 0" % (path, mode(root, path))
        assert owner(root, path) == (0, 0), path
    for path in ("/etc/passwd", "/etc/group"):
        assert mode(root, path) == 0o644 and owner(root, path) == (0, 0), path


def check_accounts(root):
    """stig V-38500 V-38499 V-38496 V-38477, CIS-10.2: accounts."""
    entries = passwd(root)
    assert [":".join(u) for u in entries if u[2] == "0"] == ["root:x:0:0:root:/root:/bin/bash"]
    assert [u[0] for u in entries if u[1] != "x"] == [], "password hash in /etc/passwd"
    loose = [u[0] for u in entries if u[0] not in ("root", "sync", "shutdown", "halt")
             and int(u[2]) < 500 and u[6] not in ALLOWED_NOLOGIN]
    assert loose == [], "system accounts with a login shell: %s" % loose
    shadow = [line.split(":") for line in read(root, "/etc/shadow").splitlines() if line]
    with_password = [s[0] for s in shadow if s[0] not in ("root", "vcap") and not s[1].startswith(("!", "*"))]
    assert with_password == [], "system users with passwords: %s" % with_password
    quick = [s[0] for s in shadow if s[0] != "root" and not s[1].startswith(("!", "*")) and s[3] != "1"]
    assert quick == [], "users that may change their password at once: %s" % quick


def check_users_and_groups(root):
    """bosh_users, rsyslog_config: vcap, syslog and the BOSH groups."""
    vcap = user(root, "vcap")
    assert vcap is not None and vcap[2] == "1000"
    assert groups(root)["vcap"][2] == vcap[3], "vcap's primary group is not vcap"
    for group in ("adm", "bosh_sudoers", "bosh_sshers", "admin", "vcap"):
        assert group in groups(root), "group %s missing" % group
    assert member_of(root, "vcap", "bosh_sshers")
    assert member_of(root, "vcap", "sudo"), "restrict_su_command: vcap not in sudo"
    assert user(root, "syslog") is not None and member_of(root, "syslog", "vcap")
    assert mode(root, "/home/vcap") == 0o700


def check_shell_setup(root):
    """bosh_users: PATH and the BOSH prompt."""
    for path in ("/root/.bashrc", "/home/vcap/.bashrc"):
        assert "export PATH=/var/vcap/bosh/bin:$PATH\n" in read(root, path), path
    for path in ("/root/.bashrc", "/home/vcap/.bashrc", "/etc/skel/.bashrc"):
        assert "source /etc/profile.d/00-bosh-ps1" in read(root, path), path
    assert os.path.isfile(os.path.join(root, "etc/profile.d/00-bosh-ps1"))
    assert ".bashrc" in read(root, "/root/.profile")
    assert "/var/vcap/bosh/bin" in read(root, "/etc/environment")


def check_sudoers(root):
    """bosh_sudoers; stig V-58901: only bosh_sudoers goes without a password."""
    text = read(root, "/etc/sudoers")
    assert re.search(r"%bosh_sudoers ALL=\(ALL\) NOPASSWD: ALL", text)
    assert "#includedir /etc/sudoers.d" in text
    loose = []
    files = ["/etc/sudoers"] + ["/etc/sudoers.d/" + n for n in os.listdir(os.path.join(root, "etc/sudoers.d"))]
    for path in files:
        for line in read(root, path).splitlines():
            if re.search(r"NOPASSWD|!authenticate", line) and not re.match(r"^#|%bosh_sudoers\s", line):
                loose.append(line)
    assert loose == [], loose


def check_securetty(root):
    """stig V-38492, CIS-9.4: root on the console only."""
    lines = [ln.strip() for ln in read(root, "/etc/securetty").splitlines()]
    assert [ln for ln in lines if ln and not ln.startswith("#") and ln != "console"] == []
    assert not any(re.match(r"^vc/[0-9]+", ln) for ln in lines)


def check_pam(root):
    """stig V-38497 (no nullok), V-38574 (sha512), password_policies, restrict_su_command."""
    pamd = os.path.join(root, "etc/pam.d")
    for name in os.listdir(pamd):
        text = read(root, "/etc/pam.d/" + name)
        assert "nullok" not in text, "nullok in /etc/pam.d/%s" % name
        for line in text.splitlines():
            if line.startswith("password") and "pam_unix.so" in line:
                assert "sha512" in line, "pam_unix without sha512 in %s" % name
    assert "pam_pwquality.so retry=3 minlen=14" in read(root, "/etc/pam.d/common-password")
    assert "pam_faillock.so preauth silent deny=3" in read(root, "/etc/pam.d/common-auth")
    assert re.search(r"^auth required pam_wheel.so use_uid$", read(root, "/etc/pam.d/su"), re.M)


def check_login_defs(root):
    """stig V-38477 V-38576; UMASK 077; USERGROUPS_ENAB no."""
    text = read(root, "/etc/login.defs")
    for pattern in (r"^PASS_MIN_DAYS 1", r"^UMASK\s077", r"^USERGROUPS_ENAB\sno", r"^ENCRYPT_METHOD SHA512"):
        assert re.search(pattern, text, re.M), pattern


def check_rsyslog(root):
    """rsyslog_config; stig V-38518 V-38519 V-38623: log files syslog:syslog 0600."""
    conf = read(root, "/etc/rsyslog.conf")
    for item in ("$ModLoad omrelp", "$FileGroup syslog", "$FileOwner syslog", "$FileCreateMode 0600"):
        assert item in conf, item
    assert "ModLoad imklog" in read(root, "/etc/rsyslog.d/enable-kernel-logging.conf")
    assert 'global(processInternalMessages="on")' in read(root, "/etc/rsyslog.d/avoid-startup-deadlock.conf")
    syslog = user(root, "syslog")
    files = set()
    confs = ["/etc/rsyslog.d/" + n for n in os.listdir(os.path.join(root, "etc/rsyslog.d"))]
    for name in ["/etc/rsyslog.conf"] + confs:
        for line in read(root, name).splitlines():
            if "/var/log/" in line and not line.lstrip().startswith("#"):
                files.add(line.split()[-1].lstrip("-"))
    assert files, "no log files referenced"
    for path in sorted(files):
        assert owner(root, path) == (int(syslog[2]), int(syslog[3])), "%s not owned by syslog" % path
        assert mode(root, path) == 0o600, "%s is not 0600" % path
    rotate = read(root, "/etc/logrotate.d/rsyslog")
    assert "sudo kill -SIGHUP $(cat /var/run/rsyslogd.pid)" in rotate and "restart rsyslog" not in rotate
    for news in ("news.crit", "news.err", "news.notice"):
        assert "/var/log/news/" + news in rotate


def check_auditd(root):
    """bosh_audit_ubuntu: auditd.conf (stig V-38464 V-54381 V-38470 V-38468 V-38633 V-38634 V-38636
    V-38445 V-38678), rules (CIS 8.1.x, stig V-38580), not enabled (stig V-38628)."""
    conf = read(root, "/etc/audit/auditd.conf")
    for line in ("disk_error_action = SYSLOG", "admin_space_left_action = SYSLOG", "space_left_action = SYSLOG",
                 "disk_full_action = SYSLOG", "max_log_file = 6", "max_log_file_action = ROTATE", "num_logs = 5",
                 "log_group = root", "space_left = 75", "admin_space_left = 50"):
        assert re.search("^%s$" % re.escape(line), conf, re.M), line
    assert re.search(r"^active = yes$", read(root, "/etc/audit/plugins.d/syslog.conf"), re.M)
    assert mode(root, "/var/log/audit") & 0o022 == 0
    rules = read(root, "/etc/audit/rules.d/audit.rules")
    for line in ("-w /sbin/insmod -p x -k modules", "-w /etc/sudoers -p wa -k scope",
                 "-w /var/log/sudo.log -p wa -k actions", "-w /etc/shadow -p wa -k identity",
                 "-a always,exit -F arch=b64 -S adjtimex -S settimeofday -k time-change",
                 "-w /var/run/faillock -p wa -k logins", "-w /var/log/wtmp -p wa -k session",
                 "-a always,exit -F arch=b64 -S mount -F auid>=500 -F auid!=4294967295 -k mounts"):
        assert re.search("^%s$" % re.escape(line), rules, re.M), line
    assert "-e 2" not in rules
    for binary in ("/usr/bin/sudo", "/usr/bin/su", "/usr/bin/passwd", "/usr/bin/crontab"):
        assert "-F path=%s -k privileged" % binary in rules, binary
    assert not os.path.lexists(os.path.join(root, "etc/systemd/system/multi-user.target.wants/auditd.service"))


def check_anacron(root):
    """cron_config: RANDOM_DELAY=60 declared before any job."""
    lines = [ln.strip() for ln in read(root, "/etc/anacrontab").splitlines()]
    idx = lines.index("RANDOM_DELAY=60")
    assert not any(re.search(r"(\S+\s+){2}cron\.", ln) for ln in lines[:idx + 1])


def check_forbidden_packages(root):
    """stig V-38701 V-38599 V-38587 V-43150 V-38598 V-38582: no tftp, ftp, telnet, rsh, xinetd, gconf2."""
    present = sorted(set(FORBIDDEN_PACKAGES) & installed(root))
    assert present == [], present


def check_no_world_writable_files(root):
    """stig V-38643."""
    out = subprocess.run(["find", root, "-xdev", "-type", "f", "-perm", "-002"], capture_output=True, text=True,
                         check=True).stdout
    assert out == "", out


def check_machine_id(root):
    """clean_machine_id: empty /etc/machine-id, no dbus machine-id, no NVMe
    host identity (nvme-cli's install made one; firstboot makes it per VM)."""
    assert read(root, "/etc/machine-id").strip() == ""
    assert not os.path.lexists(os.path.join(root, "var/lib/dbus/machine-id"))
    for name in ("etc/nvme/hostnqn", "etc/nvme/hostid"):
        assert not os.path.lexists(os.path.join(root, name)), name
    assert "nvme gen-hostnqn > /etc/nvme/hostnqn" in read(root, "/root/firstboot.sh")


def check_monit(root):
    """bosh_monit: BOSH's monitrc 0700, the include file, the wrapper."""
    assert mode(root, "/var/vcap/bosh/etc/monitrc") == 0o700
    assert os.path.isfile(os.path.join(root, "var/vcap/monit/empty.monitrc"))
    assert os.access(os.path.join(root, "var/vcap/bosh/bin/monit"), os.X_OK)


def check_runit(root):
    """runit supervises the agent and monit; delay_monit_start keeps monit off until the agent ran."""
    assert os.path.lexists(os.path.join(root, "etc/systemd/system/multi-user.target.wants/runit.service"))
    start = read(root, "/usr/sbin/runsvdir-start")
    assert "grep -c /var/vcap/data/sys/run` = x0 ] ; then rm -f /etc/service/monit ; fi" in start.splitlines()[1]
    # Looked at inside the image (chroot resolves the path): Debian's
    # /etc/service leads through /etc/runit/runsvdir/current, an absolute
    # symlink that, read from the build host, names the host's own runit
    # directory.
    present = subprocess.run(["chroot", root, "/bin/sh", "-c", "test -e /etc/service/ssh || test -L /etc/service/ssh"],
                             check=False)
    assert present.returncode != 0, "sshd would run twice (runit and systemd)"


CHECKS = [v for k, v in sorted(globals().items()) if k.startswith("check_")]


def run_all(root):
    failures = []
    for check in CHECKS:
        try:
            check(root)
        except (AssertionError, OSError, KeyError, ValueError) as exc:
            failures.append("%s: %s" % (check.__name__, exc or "failed"))
    return failures


if __name__ == "__main__":
    failed = run_all(sys.argv[1])
    for f in failed:
        print("FAIL " + f)
    print("%d passed, %d failed" % (len(CHECKS) - len(failed), len(failed)))
    sys.exit(1 if failed else 0)
