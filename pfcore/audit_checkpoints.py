"""Signed checkpoints of the audit chains: what a database writer cannot move back.

The keyed chain (pfcore.audit_keys) stops a database writer from rewriting
events, but not from deleting the newest ones and moving the chain head back:
what is left is still a valid chain. A checkpoint records each chain's head
(its last seq and hash, and where its keyed part starts), signed with an
Ed25519 key kept out of the database, in a folder the database cannot reach.
``pfcore audit verify`` and the administrator's "Verify integrity" compare
the chains with the newest checkpoint of each: an event it covers that is
missing or different is found, whatever the database says.

Each chain's entry is signed on its own, so a practice's administrators can be
sent their own chain's entry without seeing other practices'.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from .config import ConfigError
from .models import AuditChainHead, AuditEvent, utcnow

FORMAT = "pfcore-audit-checkpoint/1"
FILE_PREFIX = "checkpoint-"


@dataclass(frozen=True)
class ChainCheckpoint:
    """One chain's head as a checkpoint signed it."""

    chain_id: int
    seq: int
    hash: str
    keyed_from_seq: int | None
    created_at: str
    file: str


@dataclass
class Checkpoints:
    """The newest valid checkpoint of each chain in a folder, and what was wrong with the files."""

    folder: Path
    latest: dict[int, ChainCheckpoint]
    # (chain id, or None for a file that cannot be read at all; what is wrong)
    problems: list[tuple[int | None, str]]


def checkpoint_dir(settings: dict) -> Path:
    return Path(settings.get("audit_checkpoint_dir") or Path(settings["instance_path"]) / "audit-checkpoints")


def _key_path(settings: dict) -> Path:
    return Path(
        settings.get("audit_checkpoint_key_file") or Path(settings["instance_path"]) / "audit-checkpoint-key.pem"
    )


def signing_key(settings: dict, *, create: bool) -> Ed25519PrivateKey | None:
    """The checkpoint signing key (PEM, PKCS#8); made on first use when no file is named
    (``create``), else None when it does not exist yet."""
    path = _key_path(settings)
    if not path.exists():
        if not create:
            return None
        if settings.get("audit_checkpoint_key_file"):
            raise ConfigError(f"audit_checkpoint_key_file: {path} does not exist")
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        return key
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as error:
        raise ConfigError(f"audit_checkpoint_key_file: cannot read an Ed25519 key from {path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"audit_checkpoint_key_file: {path} is not an Ed25519 key")
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _signed_text(entry: dict) -> bytes:
    body = {k: entry[k] for k in ("format", "chain", "seq", "hash", "keyed_from_seq", "created_at")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def heads(executor) -> list:
    return list(
        executor.execute(
            select(
                AuditChainHead.chain_id, AuditChainHead.seq, AuditChainHead.hash, AuditChainHead.keyed_from_seq
            ).order_by(AuditChainHead.chain_id)
        )
    )


def write(executor, settings: dict, *, now: dt.datetime | None = None) -> tuple[Path, list[dict]]:
    """Sign every chain's head now and write them to a new file in the checkpoint
    folder (never over an older one); returns the file and its entries."""
    key = signing_key(settings, create=True)
    created = (now or utcnow()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    entries = []
    for head in heads(executor):
        entry = {
            "format": FORMAT,
            "chain": head.chain_id,
            "seq": head.seq,
            "hash": head.hash,
            "keyed_from_seq": head.keyed_from_seq,
            "created_at": created,
        }
        entry["signature"] = base64.b64encode(key.sign(_signed_text(entry))).decode("ascii")
        entries.append(entry)
    folder = checkpoint_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "format": FORMAT,
        "created_at": created,
        "key": key_id(key.public_key()),
        "base_url": settings.get("base_url", ""),
        "chains": entries,
    }
    path = folder / f"{FILE_PREFIX}{created.replace(':', '').replace('-', '')}.json"
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(partial, path)
    return path, entries


def latest_time(settings: dict) -> dt.datetime | None:
    """When the newest checkpoint file of the folder was written (None: none yet)."""
    files = sorted(checkpoint_dir(settings).glob(FILE_PREFIX + "*.json"))
    if not files:
        return None
    stamp = files[-1].stem[len(FILE_PREFIX) :]
    try:
        return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def load(settings: dict, folder: Path | None = None, chain_ids=None) -> Checkpoints | None:
    """The newest validly signed checkpoint of each chain in ``folder`` (default: the
    configured one), of the chains in ``chain_ids`` (default: all). None when there is
    no signing key yet (nothing was ever signed).

    Every file is read (an older checkpoint may cover more of a chain than a newer one
    signed after it was cut), but signatures are checked newest first and only until one
    holds for each chain: the folder gains a file a day, and the Verify integrity button
    asks for one chain."""
    folder = folder or checkpoint_dir(settings)
    key = signing_key(settings, create=False)
    if key is None:
        return None
    wanted = None if chain_ids is None else set(chain_ids)
    candidates: dict[int, list[tuple[int, str, str, dict]]] = {}
    problems: list[tuple[int | None, str]] = []
    for path in sorted(folder.glob(FILE_PREFIX + "*.json")) if folder.is_dir() else []:
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["chains"]
            for entry in entries:
                chain_id, seq, created = int(entry["chain"]), int(entry["seq"]), str(entry["created_at"])
                if wanted is None or chain_id in wanted:
                    candidates.setdefault(chain_id, []).append((seq, created, path.name, entry))
        except (OSError, ValueError, KeyError, TypeError):
            problems.append((None, f"checkpoint {path.name} cannot be read"))
    public = key.public_key()
    latest: dict[int, ChainCheckpoint] = {}
    for chain_id, entries in candidates.items():
        for seq, created, name, entry in sorted(entries, key=lambda c: (c[0], c[1]), reverse=True):
            if _signed_by(public, entry):
                latest[chain_id] = ChainCheckpoint(
                    chain_id, seq, str(entry["hash"]), entry["keyed_from_seq"], created, name
                )
                break
            problems.append(
                (
                    chain_id,
                    f"checkpoint {name} has an entry that this deployment's checkpoint key "
                    "did not sign (it was altered or comes from elsewhere)",
                )
            )
    return Checkpoints(folder, latest, problems)


def _signed_by(public: Ed25519PublicKey, entry: dict) -> bool:
    try:
        public.verify(base64.b64decode(entry["signature"]), _signed_text(entry))
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return False
    return True


def compare(executor, checkpoint: ChainCheckpoint, head) -> str | None:
    """What is wrong with a chain against its newest checkpoint (None: it still holds
    everything the checkpoint covers, as it was)."""
    when = f"the checkpoint of {checkpoint.created_at} ({checkpoint.file})"
    if head is not None and head.keyed_from_seq != checkpoint.keyed_from_seq and checkpoint.keyed_from_seq:
        return (
            f"the chain was rewritten: its keyed part no longer starts where {when} says "
            f"(event #{checkpoint.keyed_from_seq})"
        )
    stored = executor.execute(
        select(AuditEvent.hash).where(AuditEvent.chain_id == checkpoint.chain_id, AuditEvent.seq == checkpoint.seq)
    ).scalar()
    if stored is None:
        last = head.seq if head is not None else 0
        if last < checkpoint.seq:
            return (
                f"the chain was cut short: {when} covers events up to #{checkpoint.seq}, the chain now ends at #{last}"
            )
        return f"the chain is missing event #{checkpoint.seq}, which {when} covers"
    if stored != checkpoint.hash:
        return f"the chain was rewritten: event #{checkpoint.seq} is not the one {when} signed"
    return None
