"""Signed artifacts: `berth sign`, `berth verify --public-key`, `berth build --sign-key`, and the
predictor's start-up check with BERTH_PREDICTOR_VERIFY_KEY (real processes, real keys)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from berth.artifact import (
    METADATA_FILE,
    MODEL_FILE,
    SIGNATURE_FILE,
    read_metadata,
    verify_artifact,
    write_metadata,
)
from berth.cli import main
from berth.stack import LOOPBACK, free_port, predictor_process

pytestmark = pytest.mark.integration


def _keypair(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return _keypair(tmp_path, "release")


@pytest.fixture
def signed(artifact_copy: Path, keys: tuple[Path, Path]) -> Path:
    assert main(["sign", str(artifact_copy), "--key", str(keys[0])]) == 0
    return artifact_copy


def _verify(artifact: Path, public: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", str(artifact), "--public-key", str(public)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_sign_then_verify_round_trip(
    signed: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (signed / SIGNATURE_FILE).is_file()
    assert SIGNATURE_FILE not in read_metadata(signed).files  # not in the digest list
    code, out = _verify(signed, keys[1], capsys)
    assert code == 0 and "signature verified" in out
    assert main(["verify", str(signed)]) == 0  # without a key: digests only


def test_unsigned_artifact_is_refused(
    artifact_copy: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _verify(artifact_copy, keys[1], capsys)
    assert code == 1 and "unsigned" in out and SIGNATURE_FILE in out
    assert main(["verify", str(artifact_copy)]) == 0  # digest-only verify still passes


def test_wrong_key_is_refused(
    signed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, other = _keypair(tmp_path, "other")
    code, out = _verify(signed, other, capsys)
    assert code == 1 and "signature was not made with the key" in out and str(other) in out


def test_tampered_model_file_is_refused(
    signed: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _flip_a_bit(signed / MODEL_FILE)
    code, out = _verify(signed, keys[1], capsys)
    assert code == 1 and MODEL_FILE in out  # the digest check names it first


def test_model_and_digests_rewritten_together_fail_the_signature(
    signed: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Whoever can rewrite metadata.json can make the digests match: only the signature holds."""
    _flip_a_bit(signed / MODEL_FILE)
    write_metadata(signed, read_metadata(signed))
    verify_artifact(signed)  # the digests agree again
    code, out = _verify(signed, keys[1], capsys)
    assert code == 1 and f"{MODEL_FILE}: changed since it was signed" in out


def test_tampered_metadata_is_refused(
    signed: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    meta = read_metadata(signed)
    write_metadata(signed, meta.model_copy(update={"version": "v1-forged"}))
    verify_artifact(signed)
    code, out = _verify(signed, keys[1], capsys)
    assert code == 1 and f"{METADATA_FILE}: changed since it was signed" in out


def test_a_file_added_after_signing_is_refused(
    signed: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (signed / "extra.onnx").write_bytes(b"not signed")
    code, out = _verify(signed, keys[1], capsys)
    assert code == 1 and "extra.onnx: not covered by the signature" in out


def test_build_signs_as_its_last_step(
    built: tuple[Path, Path],
    tmp_path: Path,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, artifact = built
    shutil.copytree(artifact.with_name(artifact.name + ".build"), tmp_path / "art.build")
    out = tmp_path / "art"
    args = ["build", "--repo", str(repo), "--output", str(out), "--step", "package"]
    assert main([*args, "--sign-key", str(keys[0])]) == 0
    code, text = _verify(out, keys[1], capsys)
    assert code == 0, text


def _start_predictor(artifact: Path, public: Path) -> tuple[int | None, str, bool]:
    http = free_port()
    server = predictor_process(
        "driver-ranking",
        artifact,
        (http, free_port()),
        env={"BERTH_PREDICTOR_VERIFY_KEY": str(public), "BERTH_PREDICTOR_WARMUP_RUNS": "1"},
    )
    server.start()
    try:
        assert server.proc is not None
        try:
            server.wait_ready(90)
            return None, server.log(), True
        except RuntimeError:
            return server.proc.returncode, server.log(), False
    finally:
        server.stop()


def test_predictor_serves_a_signed_artifact_and_refuses_an_unsigned_one(
    signed: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    _, _, ready = _start_predictor(signed, keys[1])
    assert ready and LOOPBACK
    (signed / SIGNATURE_FILE).unlink()
    code, log, ready = _start_predictor(signed, keys[1])
    assert not ready and code == 1
    refusals = [json.loads(line) for line in log.splitlines() if "refusing" in line]
    assert len(refusals) == 1
    assert refusals[0]["file"] == SIGNATURE_FILE and "unsigned" in refusals[0]["error"]
