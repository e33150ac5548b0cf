#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""Checks mimamori requests and audit logs from their documentation alone (an independent implementation).

usage: interop_check.py request ENVELOPE POLICE_PUB CITY_PUB
       interop_check.py audit LOG CAMERA_PUB
Uses only the standard library and the `cryptography` package; exit 0 when valid, 1 otherwise.
"""
import base64
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def public_key(path):
    """The Ed25519 key of a NAME.pub file (docs/keys.md)."""
    lines = open(path, encoding="utf-8").read().split("\n")
    assert lines[0] == "mimamori-key-v1", f"{path}: not a key file"
    fields = dict(line.split(": ", 1) for line in lines[1:] if line)
    return base64.b64decode(fields["ed25519-public"], validate=True)


def key_id(pk):
    return hashlib.blake2b(pk, digest_size=32).hexdigest()[:16]


def check_request(envelope_path, police_path, city_path):
    envelope = json.load(open(envelope_path, encoding="utf-8"))
    police_pk, city_pk = public_key(police_path), public_key(city_path)
    body = base64.b64decode(envelope["body"], validate=True)
    assert body.startswith(b"mimamori-request 1\n"), "body does not start with the magic line"
    assert len(body.split(b"\n")) == 15 and body.endswith(b"\n"), "body is not 14 lines"
    police_sig = base64.b64decode(envelope["police"]["signature"], validate=True)
    assert envelope["police"]["key_id"] == key_id(police_pk), "police key id"
    Ed25519PublicKey.from_public_bytes(police_pk).verify(police_sig, body)
    assert envelope["approval"]["key_id"] == key_id(city_pk), "city key id"
    Ed25519PublicKey.from_public_bytes(city_pk).verify(
        base64.b64decode(envelope["approval"]["signature"], validate=True),
        b"mimamori-approval-v1\n" + body + police_sig)
    print(f"request ok: police and city signatures verify ({len(body)} body bytes)")


WORD = re.compile(r"[a-z0-9_]{1,64}")
TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?Z")


def check_audit(log_path, camera_path):
    camera_pk = public_key(camera_path)
    verifier = Ed25519PublicKey.from_public_bytes(camera_pk)
    data = open(log_path, "rb").read()
    assert data.endswith(b"\n"), "torn last line"
    prev, seq, checkpoints = "0" * 64, 0, 0
    for number, line in enumerate(data[:-1].split(b"\n"), start=1):
        assert len(line) <= 1 << 20, f"line {number}: longer than 1048576 bytes"
        entry = json.loads(line)
        assert sorted(entry) == ["fields", "prev", "seq", "time", "type"], f"line {number}: members"
        assert TIME.fullmatch(entry["time"]) and not entry["time"].endswith(".000000Z"), f"line {number}: time"
        assert WORD.fullmatch(entry["type"]), f"line {number}: type"
        assert isinstance(entry["fields"], dict), f"line {number}: fields"
        for name, value in entry["fields"].items():
            assert WORD.fullmatch(name), f"line {number}: a field name is not a snake_case word"
            assert isinstance(value, (str, int, bool)), f"line {number}: field {name} is not a string, number or flag"
        assert entry["seq"] == seq + 1, f"line {number}: seq {entry['seq']}, expected {seq + 1}"
        assert entry["prev"] == prev, f"line {number}: prev does not match line {number - 1}"
        if entry["type"] == "checkpoint":
            assert entry["fields"]["key_id"] == key_id(camera_pk), f"line {number}: checkpoint key"
            message = f"mimamori-audit-checkpoint-v1\n{entry['seq']}\n{entry['time']}\n{entry['prev']}"
            verifier.verify(base64.b64decode(entry["fields"]["signature"], validate=True), message.encode())
            checkpoints += 1
        seq, prev = entry["seq"], hashlib.blake2b(line, digest_size=32).hexdigest()
    print(f"audit ok: {seq} entries, {checkpoints} signed checkpoints")


def main():
    try:
        if sys.argv[1:2] == ["request"] and len(sys.argv) == 5:
            check_request(*sys.argv[2:])
        elif sys.argv[1:2] == ["audit"] and len(sys.argv) == 4:
            check_audit(*sys.argv[2:])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (AssertionError, InvalidSignature, KeyError, ValueError) as e:
        print(f"invalid: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
