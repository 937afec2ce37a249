"""Signed artifacts with the OpenSSF ``model-signing`` library (key-based, offline).

``berth sign DIR --key PRIVATE.pem`` signs every file of the artifact (``metadata.json``
included) with an EC private key and writes the signature into the artifact as ``model.sig``
(a Sigstore bundle holding a DSSE envelope over an in-toto statement of each file's sha256).
``model.sig`` is not in the metadata's digest list: signing after packaging changes no digest.
:func:`verify_signature` checks the signature against the matching public key and every file
against it: a changed, missing or extra file, another key, a broken or absent signature are
each an :class:`~berth.errors.ArtifactError` that names what failed.

``model_signing`` is imported in the functions: it loads Sigstore's client (~0.4 s).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from berth.artifact import SIGNATURE_FILE, verify_artifact
from berth.errors import ArtifactError

if TYPE_CHECKING:
    from model_signing import hashing


def _hashing() -> hashing.Config:
    from model_signing import hashing

    return hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE])  # type: ignore[no-untyped-call]


def sign_artifact(directory: Path | str, private_key: Path | str) -> Path:
    """Check the artifact's digests, then sign it; returns the path of ``model.sig``."""
    from model_signing import signing

    directory = Path(directory)
    verify_artifact(directory)  # never sign an artifact that is already broken
    key = Path(private_key)
    if not key.is_file():
        raise ArtifactError(f"{key}: private key not found", file=str(key))
    signature = directory / SIGNATURE_FILE
    try:
        config = signing.Config().use_elliptic_key_signer(private_key=key)  # type: ignore[no-untyped-call]
        config.set_hashing_config(_hashing()).sign(directory, signature)
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{key}: cannot sign with this key ({exc})", file=str(key)) from exc
    return signature


def verify_signature(directory: Path | str, public_key: Path | str) -> None:
    """Raise :class:`ArtifactError` unless ``model.sig`` verifies with ``public_key`` and
    covers exactly the artifact's files as they are."""
    from model_signing import verifying

    directory = Path(directory)
    key = Path(public_key)
    signature = directory / SIGNATURE_FILE
    if not key.is_file():
        raise ArtifactError(f"{key}: public key not found", file=str(key))
    if not signature.is_file():
        raise ArtifactError(
            f"{signature}: artifact is unsigned (no {SIGNATURE_FILE})", file=SIGNATURE_FILE
        )
    try:
        config = verifying.Config().use_elliptic_key_verifier(public_key=key)  # type: ignore[no-untyped-call]
        config.set_hashing_config(_hashing()).verify(directory, signature)
    except Exception as exc:  # model-signing raises ValueError, and others on a broken bundle
        raise _named(exc, directory, key) from None


def _named(exc: Exception, directory: Path, key: Path) -> ArtifactError:
    """Turn model-signing's message into one that names the file or the signature."""
    text = str(exc)
    if "Key mismatch" in text or "public key" in text.lower():
        return ArtifactError(
            f"{directory / SIGNATURE_FILE}: signature was not made with the key {key}",
            file=SIGNATURE_FILE,
        )
    # model-signing joins its findings as the repr of a list: a finding whose digest bytes
    # hold a quote is repr'd with escaped quotes, so every quote may carry a backslash.
    q = r"\\?'"
    for pattern, what in (
        (rf"Hash mismatch for {q}([^'\\]+){q}", "changed since it was signed"),
        (
            rf"Extra files found in model {q}[^'\\]*{q}: ([^\"'\\\]]+)",
            "not covered by the signature",
        ),
        (rf"Missing files in model {q}[^'\\]*{q}: ([^\"'\\\]]+)", "signed but missing"),
    ):
        names = [n.strip() for found in re.findall(pattern, text) for n in found.split(",")]
        if names:
            listed = ", ".join(str(directory / n) for n in names)
            return ArtifactError(f"{listed}: {what}", file=names[0])
    return ArtifactError(
        f"{directory / SIGNATURE_FILE}: signature does not verify "
        f"({type(exc).__name__}: {text[:200]})",
        file=SIGNATURE_FILE,
    )
