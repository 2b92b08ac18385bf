# -*- coding: utf-8 -*-
# Copyright (c) osimage.builder contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an archive's InRelease and a keyring may be trusted for, as pure
functions: the shape of a clear-signed file (apt's SplitClearSignedFile
rules), the Release fields apt checks (Suite/Codename, Valid-Until), and the
primary keys of a keyring as `gpg --with-colons` lists them."""

from __future__ import annotations

import datetime
import email.utils

from ansible_collections.osimage.builder.plugins.module_utils._debian import control_stanzas

# RFC 4880 section 7: the armour lines of a clear-signed message.
BEGIN_MESSAGE = "-----BEGIN PGP SIGNED MESSAGE-----"
BEGIN_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
END_SIGNATURE = "-----END PGP SIGNATURE-----"


def clearsigned_problem(text):
    """What is wrong with the shape of a clear-signed file, or None.

    gpgv vouches only for the text between the armour lines and still exits 0
    when unsigned text surrounds it, so (as apt's SplitClearSignedFile does)
    only blank lines may precede BEGIN PGP SIGNED MESSAGE or follow END PGP
    SIGNATURE, there is exactly one signed message, and no line of it starts
    with a dash that is not dash-escaped (RFC 4880 section 7.1)."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    n = 0
    while n < len(lines) and not lines[n].strip():
        n += 1
    if n == len(lines):
        return "it is empty"
    if lines[n] != BEGIN_MESSAGE:
        return "it has unsigned text before '%s' (line %d: %r)" % (BEGIN_MESSAGE, n + 1, lines[n][:60])
    n += 1
    while n < len(lines) and lines[n].strip():
        if not lines[n].startswith("Hash: "):
            return "its armour header has a line that is not 'Hash:' (line %d: %r)" % (n + 1, lines[n][:60])
        n += 1
    n += 1
    while n < len(lines) and lines[n] != BEGIN_SIGNATURE:
        if lines[n].startswith("-") and not lines[n].startswith("- "):
            return "its signed text has a line starting with a dash that is not dash-escaped (line %d: %r)" \
                % (n + 1, lines[n][:60])
        n += 1
    if n == len(lines):
        return "it has no '%s' line" % BEGIN_SIGNATURE
    while n < len(lines) and lines[n] != END_SIGNATURE:
        n += 1
    if n == len(lines):
        return "it has no '%s' line" % END_SIGNATURE
    for m in range(n + 1, len(lines)):
        if lines[m].strip():
            return "it has unsigned text after '%s' (line %d: %r)" % (END_SIGNATURE, m + 1, lines[m][:60])
    return None


def release_fields(release_text):
    """The single-line fields of a Release file (its first stanza)."""
    return next(control_stanzas(release_text), {})


def release_date(value):
    """A Release date (RFC 2822, for example 'Thu, 21 Apr 2022 17:16:08 UTC')
    as an aware datetime, or None when it does not parse."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # '-0000' means UTC with no offset information (RFC 2822 section 3.3)
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when


def release_problem(release_text, suite, now):
    """What makes a verified Release unusable for `suite` at `now`, or None.

    apt's rules: the Suite or the Codename must be the distribution asked for
    (otherwise a signed Release of another suite, an old one for example,
    could be replayed), and a Valid-Until in the past means the file is
    expired (a frozen mirror must not serve it forever)."""
    fields = release_fields(release_text)
    names = [fields[k] for k in ("Suite", "Codename") if fields.get(k)]
    if not names:
        return "its Release has neither a Suite nor a Codename field"
    if suite not in names:
        return "its Release is for %s, not for suite=%s" % (
            " / ".join("%s %s" % (k, fields[k]) for k in ("Suite", "Codename") if fields.get(k)), suite)
    if fields.get("Valid-Until"):
        until = release_date(fields["Valid-Until"])
        if until is None:
            return "its Release has a Valid-Until that is not a date: %r" % fields["Valid-Until"]
        if until < now:
            return "its Release expired: Valid-Until %s is before now (%s)" % (
                fields["Valid-Until"], now.strftime("%a, %d %b %Y %H:%M:%S UTC"))
    return None


def primary_fingerprints(colons_text):
    """Primary-key fingerprints in `gpg --with-colons` output, in order (a
    subkey's fpr record follows a `sub` record and is skipped)."""
    fprs, primary = [], False
    for line in colons_text.splitlines():
        f = line.split(":")
        if f[0] == "pub":
            primary = True
        elif f[0] in ("sub", "ssb", "sec"):
            primary = f[0] == "sec"
        elif f[0] == "fpr" and primary and len(f) > 9:
            fprs.append(f[9].upper())
            primary = False
    return fprs


def keyring_difference(have, pinned):
    """Why a keyring holding primary keys `have` is not exactly `pinned`, or
    None when it is (each pinned key once, nothing else)."""
    extra = [f for f in have if f not in pinned]
    missing = [f for f in pinned if f not in have]
    twice = sorted({f for f in have if have.count(f) > 1})
    parts = []
    if extra:
        parts.append("holds keys that are not pinned: %s" % ", ".join(extra))
    if missing:
        parts.append("lacks the pinned keys %s" % ", ".join(missing))
    if twice:
        parts.append("holds keys more than once: %s" % ", ".join(twice))
    return "; ".join(parts) or None
