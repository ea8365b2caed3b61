"""The user's runtime directory, where fannode keeps sockets only its user may open (the
node's control socket and lock, an instance's backdoor): `$XDG_RUNTIME_DIR/fannode`, else
`/tmp/fannode-UID`. It is created 0700 and refused when another user owns it or others
may write to it: in /tmp anyone can create `fannode-1000` before user 1000 does, and put
a socket of theirs in place of ours.
"""
from __future__ import annotations

import os
import stat

from fannode.exceptions import FannodeError

FALLBACK_BASE = '/tmp'  # for /tmp/fannode-UID when $XDG_RUNTIME_DIR is not set


def runtime_dir() -> str:
    base = os.environ.get('XDG_RUNTIME_DIR', '')
    if base and os.path.isdir(base):
        path = os.path.join(base, 'fannode')
    else:
        path = os.path.join(FALLBACK_BASE, 'fannode-%d' % os.getuid())
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise FannodeError('cannot create the runtime directory %s: %s' % (path, e.strerror)) from None
    check_private(path)
    return path


def check_private(path: str) -> None:
    """A directory of this user's that nobody else may write to, or a one-line error."""
    try:
        st = os.lstat(path)  # not stat: a symlink planted there could point anywhere
    except OSError as e:
        raise FannodeError('cannot use the runtime directory %s: %s' % (path, e.strerror)) from None
    fix = 'remove it, or set $XDG_RUNTIME_DIR to a directory of your own'
    if not stat.S_ISDIR(st.st_mode):
        raise FannodeError('the runtime directory %s is not a directory: %s' % (path, fix))
    if st.st_uid != os.getuid():
        raise FannodeError('the runtime directory %s belongs to uid %d, not to you (uid %d): %s'
                           % (path, st.st_uid, os.getuid(), fix))
    if st.st_mode & 0o022:
        raise FannodeError('the runtime directory %s is writable by others (mode %03o): %s'
                           % (path, stat.S_IMODE(st.st_mode), 'chmod 700 it, or ' + fix))
