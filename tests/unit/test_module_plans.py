"""Pure parts of the modules: argument building and plans."""
from ansible_collections.osimage.builder.plugins.module_utils import _archive as rootfs_archive
from ansible_collections.osimage.builder.plugins.modules import chroot_command, rootfs_bootstrap


def params(**kw):
    p = dict(variant="minbase", architecture="amd64", components=["main"], include=[], exclude=[],
             keyring="/k.gpg", package_cache_dir=None, suite="bookworm")
    p.update(kw)
    return p


def test_mmdebstrap_argv_cache_hooks_and_exclude():
    argv = rootfs_bootstrap.mmdebstrap_argv(params(include=["a", "b"], exclude=["c"], package_cache_dir="/c"),
                                            "/w/root.tar", "http://m/debian", "/w/meta/status")
    assert "--include=a,b" in argv
    assert "--keyring=/k.gpg" in argv
    assert "--skip=download/empty" in argv
    assert any(a.startswith("--customize-hook=sync-out /var/cache/apt/archives /c") for a in argv)
    assert any("apt-get -y purge c" in a for a in argv)
    assert argv[-3:] == ["bookworm", "/w/root.tar", "http://m/debian"]


def test_debootstrap_argv_enforces_signatures():
    argv = rootfs_bootstrap.debootstrap_argv(params(exclude=["c"], package_cache_dir="/c"), "/w/root", None)
    assert "--force-check-gpg" in argv and "--exclude=c" in argv and "--cache-dir=/c" in argv
    assert argv[-2:] == ["bookworm", "/w/root"]


def test_output_format():
    assert rootfs_bootstrap.output_format("/x/root.tar.gz", "auto") == "tar"
    assert rootfs_bootstrap.output_format("/x/root", "auto") == "directory"
    assert rootfs_bootstrap.output_format("/x/root", "tar") == "tar"


def test_package_plan():
    installed = {"sudo", "cron"}
    assert chroot_command.package_plan(["sudo", "vim-tiny", "cron:amd64"], installed, "present") == ["vim-tiny"]
    assert chroot_command.package_plan(["sudo", "vim-tiny"], installed, "absent") == ["sudo"]


def test_tar_create_argv_is_reproducible():
    argv = rootfs_archive.tar_create_argv("/r", ["./tmp/*"], 1700000000)
    for flag in ("--sort=name", "--numeric-owner", "--xattrs", "--acls", "--mtime=@1700000000", "--clamp-mtime",
                 "--exclude=./tmp/*"):
        assert flag in argv
    assert "--mtime=@1700000000" not in rootfs_archive.tar_create_argv("/r", [], None)
