"""A tiny Debian-format archive on loopback, signed with throw-away keys:
enough of dists/<suite>/InRelease, a Packages.gz and a keyring package for
archive_keyring to walk the chain of trust, and to attack it, without a
network."""
import contextlib
import datetime
import email.utils
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import subprocess
import tempfile
import threading

UBUNTU_KEYRING_PATH = "usr/share/keyrings/ubuntu-archive-keyring.gpg"


class Keys:
    """OpenPGP keys in a throw-away GnuPG home (ed25519, no passphrase)."""

    def __init__(self, home):
        self.home = str(home)
        os.chmod(self.home, 0o700)

    def gpg(self, *args, data=None):
        proc = subprocess.run(["gpg", "--homedir", self.home, "--batch", "--no-options"] + list(args),
                              input=data, capture_output=True, check=False)
        if proc.returncode != 0:
            raise AssertionError("gpg %s failed: %s" % (" ".join(args), proc.stderr.decode(errors="replace")))
        return proc.stdout

    def generate(self, uid):
        """A new signing key; returns its fingerprint."""
        self.gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        out = self.gpg("--with-colons", "--list-keys", uid).decode()
        return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))

    def export(self, *fprs):
        """A binary keyring holding exactly these keys."""
        return self.gpg("--export", *fprs)

    def clearsign(self, text, fpr):
        return self.gpg("--local-user", fpr, "--digest-algo", "SHA512", "--clearsign", data=text.encode())

    def close(self):
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "all"], check=False, capture_output=True)


def show_keys(path):
    """Primary-key fingerprints of a keyring file, as gpg lists them."""
    with tempfile.TemporaryDirectory(prefix="gnupg-") as home:
        out = subprocess.run(["gpg", "--homedir", home, "--batch", "--no-options", "--no-autostart", "--show-keys",
                              "--with-colons", str(path)], capture_output=True, text=True, check=True).stdout
    fprs, primary = [], False
    for line in out.splitlines():
        f = line.split(":")
        if f[0] in ("pub", "sub"):
            primary = f[0] == "pub"
        elif f[0] == "fpr" and primary:
            fprs.append(f[9])
            primary = False
    return fprs


def keyring_deb(workdir, keyring, package="ubuntu-keyring", version="1.0", keyring_path=UBUNTU_KEYRING_PATH):
    """A keyring package made with dpkg-deb --build; returns its bytes."""
    tree = os.path.join(str(workdir), "%s_%s" % (package, version))
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(os.path.join(tree, "DEBIAN"))
    with open(os.path.join(tree, "DEBIAN", "control"), "w") as f:
        f.write("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: Tests <tests@example.invalid>\n"
                "Description: archive keyring for tests\n" % (package, version))
    path = os.path.join(tree, keyring_path)
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(keyring)
    deb = tree + ".deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", tree, deb], check=True, capture_output=True)
    with open(deb, "rb") as f:
        return f.read()


def release_date(when):
    return email.utils.format_datetime(when.astimezone(datetime.timezone.utc), usegmt=True).replace("GMT", "UTC")


def release_text(suite, files, codename=None, valid_until=None):
    """A Release file listing `files` (path under dists/<suite> -> bytes) in
    its SHA256 section."""
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = ["Origin: Tests", "Label: Tests", "Suite: %s" % suite, "Codename: %s" % (codename or suite),
             "Date: %s" % release_date(now)]
    if valid_until is not None:
        lines.append("Valid-Until: %s" % release_date(valid_until))
    lines += ["Architectures: amd64", "Components: main", "Description: loopback archive for tests", "SHA256:"]
    for rel, data in sorted(files.items()):
        lines.append(" %s %16d %s" % (hashlib.sha256(data).hexdigest(), len(data), rel))
    return "\n".join(lines) + "\n"


def packages_index(package, filename, deb):
    """Packages.gz bytes with one stanza."""
    text = ("Package: %s\nArchitecture: all\nVersion: 1.0\nFilename: %s\nSize: %d\nSHA256: %s\n"
            "Description: archive keyring for tests\n\n"
            % (package, filename, len(deb), hashlib.sha256(deb).hexdigest()))
    return gzip.compress(text.encode(), mtime=0)


def write(root, rel, data):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def publish(root, keys, signer, keyring, suite="jammy", codename=None, valid_until=None, release_suite=None):
    """Lay out an archive under `root` whose keyring package holds `keyring`,
    InRelease clear-signed by `signer`. `release_suite` names the suite the
    Release says it is (default: `suite`). Returns the index and deb bytes."""
    filename = "pool/main/u/ubuntu-keyring/ubuntu-keyring_1.0_all.deb"
    deb = keyring_deb(os.path.join(str(root), ".build"), keyring)
    write(root, filename, deb)
    index = packages_index("ubuntu-keyring", filename, deb)
    write(root, "dists/%s/main/binary-amd64/Packages.gz" % suite, index)
    text = release_text(release_suite or suite, {"main/binary-amd64/Packages.gz": index},
                        codename=codename, valid_until=valid_until)
    write(root, "dists/%s/InRelease" % suite, keys.clearsign(text, signer))
    return index, deb


@contextlib.contextmanager
def serve(root):
    """http.server over `root` on 127.0.0.1, a random port, in a thread;
    yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
