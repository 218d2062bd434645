"""cloud.py: the credentials zip's checks and the stackops-check verdict from progress lines."""

from __future__ import annotations

import io
import zipfile

import pytest

from distro_builder.smart_installer import cloud
from distro_builder.smart_installer.errors import BadRequest


def _zip(**files: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def test_check_zip() -> None:
    cloud.check_zip(_zip(novarc="export EC2_URL=x\n", **{"cacert.pem": "x"}))
    for data, why in (
        (b"PK\x03\x04zip", "cannot be read"),
        (b"not a zip", "not a zip file"),
        (_zip(**{"cacert.pem": "x"}), "no novarc"),
        (b"PK" + b"\0" * cloud.MAX_CREDENTIALS, "over"),
    ):
        with pytest.raises(BadRequest, match=why):
            cloud.check_zip(data)


def test_verdict_is_the_last_run() -> None:
    assert cloud.verdict([])["verdict"] == "none"
    lines = [
        (1.0, "STACKOPS-CHECK FAIL ec2: connection refused"),
        (2.0, "STACKOPS-CHECK stackops-check: FAILED 1 of 4 checks: ec2"),
        (3.0, "STACKOPS-CHECK ok   ec2: 1 zone"),
        (4.0, "STACKOPS-CHECK stackops-check: passed 4 checks"),
    ]
    v = cloud.verdict(lines[:2])
    assert v["verdict"] == "failed" and v["checks"] == [
        {"status": "fail", "name": "ec2", "detail": "connection refused"}
    ]
    v = cloud.verdict(lines)
    assert v == {
        "verdict": "passed",
        "summary": "stackops-check: passed 4 checks",
        "checks": [{"status": "ok", "name": "ec2", "detail": "1 zone"}],
        "at": 4.0,
    }
    assert cloud.endpoints("10.0.0.10")["ec2"] == "http://10.0.0.10:8773/services/Cloud"
