"""An ed25519 signature on a run's audit head, with a key kept outside the run folder.

The audit trail is a hash chain: a hand edit anywhere breaks it, unless the editor recomputes every
hash after the edit (the chain alone cannot tell a trail rewritten end to end from the original).
A head hash noted elsewhere catches that (``rsi audit verify --known``); a signature does the
noting for you: when a run ends (and on ``rsi audit sign RUN``) rsi signs

    rsi-audit-head:v1:<head hash>:<number of events>

with this user's ed25519 key and writes ``audit.sig`` (the head, the count, the public key, the
signature) beside the database. ``rsi audit verify`` then checks the signature against the key in
the key folder (not against the key in the file, which anyone can replace with their own) and that
the signed head is still in the chain.

**What a valid signature proves**: the trail up to the signed head is the one that was signed by
the holder of this key folder's private key; someone who can write the run folder but cannot read
the key cannot rewrite that part of the trail (or the tables the state check ties to it) without
``rsi audit verify`` failing. **What it does not prove**: anything after the signed head (events
appended later, e.g. by a resumed run, until it signs again); that the key holder did not sign a
forged trail, or that the key was not read by someone with the user's rights (the key is a file
readable by this user only; candidates and improvers cannot reach it through the sandbox, but code
running as this user outside it can); that the evaluations were honest (that is the sandbox's and
the split contract's job). A missing ``audit.sig`` is reported, not failed: a run made without the
``sign`` extra (``pip install 'rsi[sign]'``, the ``cryptography`` package) has none.

The key folder is ``$RSI_KEY_DIR``, else ``$XDG_CONFIG_HOME/rsi``, else ``~/.config/rsi``; the key
(``audit_ed25519``, mode 0600) is made on first use.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import RsiError
from . import audit

SIG_FILE = "audit.sig"
KEY_FILE = "audit_ed25519"
DOMAIN = "rsi-audit-head:v1"


@dataclass(frozen=True)
class SignatureReport:
    status: str  # "valid", "invalid", "unsigned", "unavailable" (no cryptography package)
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("valid", "unsigned", "unavailable")


def available() -> bool:
    try:
        import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
    except ImportError:
        return False
    return True


def key_dir() -> Path:
    if os.environ.get("RSI_KEY_DIR"):
        return Path(os.environ["RSI_KEY_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rsi"


def _private_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = key_dir() / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        raw = Ed25519PrivateKey.generate().private_bytes_raw()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(raw.hex() + "\n")
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    except ValueError as exc:
        raise RsiError(f"{path}: not an ed25519 key written by rsi ({exc}); move it away to make a new one") from None


def _message(head: str, events: int) -> bytes:
    return f"{DOMAIN}:{head}:{events}".encode()


def public_key_hex() -> str:
    return _private_key().public_key().public_bytes_raw().hex()


def sign_run(run_dir: Path, conn: sqlite3.Connection) -> Path | None:
    """Sign the run's current audit head (None, doing nothing, without the cryptography package).
    Refuses a trail that does not verify: rsi never signs a broken chain."""
    if not available():
        return None
    report = audit.verify(conn)
    if not report.ok:
        raise RsiError(f"{run_dir}: the audit trail does not verify ({report.summary()}); not signing it")
    key = _private_key()
    signature = key.sign(_message(report.head_hash, report.events))
    record = {"head": report.head_hash, "events": report.events, "scheme": DOMAIN,
              "public_key": key.public_key().public_bytes_raw().hex(), "signature": signature.hex()}
    path = Path(run_dir) / SIG_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def verify_signature(run_dir: Path, conn: sqlite3.Connection) -> SignatureReport:
    """Check ``audit.sig`` against this key folder's key and the chain (see the module docstring)."""
    path = Path(run_dir) / SIG_FILE
    if not path.exists():
        return SignatureReport("unsigned", f"no {SIG_FILE}: the head is not signed (`rsi audit sign {run_dir}`)")
    if not available():
        return SignatureReport("unavailable", f"{SIG_FILE} present, but the cryptography package is missing to "
                                              "check it (pip install 'rsi[sign]')")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        record = json.loads(path.read_text())
        head, events = str(record["head"]), int(record["events"])
        signature = bytes.fromhex(record["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        return SignatureReport("invalid", f"{path} is not a signature file ({exc})")
    mine = public_key_hex()
    if record.get("public_key") != mine:
        return SignatureReport("invalid", f"{SIG_FILE} names the key {str(record.get('public_key'))[:16]}..., not "
                                          f"this key folder's ({key_dir()}: {mine[:16]}...): signed elsewhere, or "
                                          "replaced")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(mine)).verify(signature, _message(head, events))
    except InvalidSignature:
        return SignatureReport("invalid", f"the signature in {SIG_FILE} does not match its head: the file was edited")
    report = audit.verify(conn, known=head)
    if not report.ok:
        return SignatureReport("invalid", f"the signed head {head[:16]} (event {events}) is no longer in the trail: "
                                          f"the trail was rewritten ({report.summary()})")
    later = report.events - events
    return SignatureReport("valid", f"head {head[:16]} signed by {mine[:16]}... (event {events})"
                                    + (f"; {later} later event(s) are not covered" if later else ""))
