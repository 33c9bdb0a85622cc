"""python-fido2 0.9.1's Fido2Server verifies what `vkey webauthn` makes.

The relying party's options go, as JSON, to `vkey webauthn create|get
--ephemeral --state DIR` (the binary in $VKEY_BIN), and its response JSON
back to Fido2Server: attestation none and packed, ES256 and EdDSA,
discoverable or not, with and without a PIN (user verification required);
then the failures a browser reports, by DOMException name. Run with
/usr/bin/python3 (Debian's python3-fido2). Exits non-zero, with the reason,
on any failure.
"""

import base64
import enum
import json
import os
import subprocess
import sys
import tempfile

from fido2.server import Fido2Server
from fido2.client import ClientData as CollectedClientData
from fido2.ctap2 import AttestationObject, AuthenticatorData

ORIGIN = "https://example.com"
RP = {"id": "example.com", "name": "Example RP"}
BIN = os.environ["VKEY_BIN"]


def check(ok, what):
    if not ok:
        raise SystemExit("FAIL: " + what)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def to_json(v):
    """python-fido2's options as the JSON a browser's RP would send."""
    if isinstance(v, bytes):
        return b64(v)
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    return v


def vkey(ceremony, options, state, pin=None, origin=ORIGIN):
    env = dict(os.environ)
    env.pop("VKEY_PIN", None)
    if pin:
        env["VKEY_PIN"] = pin
    p = subprocess.run(
        [BIN, "webauthn", ceremony, "--ephemeral", "--state", state, "--origin", origin, "--json"],
        input=json.dumps(to_json(options)).encode(), capture_output=True, env=env, timeout=60,
    )
    out = json.loads(p.stdout.decode() or "{}")
    if p.returncode != 0:
        check("error" in out, "a failure comes with a JSON error: %r" % p.stderr)
        return None, out["error"]["name"]
    return out, None


def register(server, state, user, alg, resident, pin, creds=()):
    uv = "required" if pin else "discouraged"
    options, st = server.register_begin(user, credentials=list(creds), resident_key=resident, user_verification=uv)
    options = to_json(options)
    options["publicKey"]["pubKeyCredParams"] = [{"type": "public-key", "alg": alg}]
    resp, err = vkey("create", options, state, pin)
    if err:
        return None, err
    check(resp["type"] == "public-key" and resp["authenticatorAttachment"] == "cross-platform", "response shape")
    r = resp["response"]
    auth_data = server.register_complete(st, CollectedClientData(unb64(r["clientDataJSON"])), AttestationObject(unb64(r["attestationObject"])))
    check(auth_data.is_user_verified() == bool(pin), "UV flag %s with pin=%s" % (auth_data.is_user_verified(), bool(pin)))
    check(r["publicKeyAlgorithm"] == alg, "publicKeyAlgorithm %s, want %s" % (r["publicKeyAlgorithm"], alg))
    fmt = AttestationObject(unb64(r["attestationObject"])).fmt
    return (auth_data.credential_data, fmt), None


def authenticate(server, state, creds, discoverable, pin):
    uv = "required" if pin else "discouraged"
    options, st = server.authenticate_begin(None if discoverable else creds, user_verification=uv)
    resp, err = vkey("get", options, state, pin)
    if err:
        return None, err
    r = resp["response"]
    server.authenticate_complete(st, creds, unb64(resp["rawId"]), CollectedClientData(unb64(r["clientDataJSON"])),
                                 AuthenticatorData(unb64(r["authenticatorData"])), unb64(r["signature"]))
    if discoverable:
        check(r.get("userHandle"), "a discoverable sign-in returns the user handle")
    return AuthenticatorData(unb64(r["authenticatorData"])).counter, None


def main():
    tmp = tempfile.mkdtemp()
    n = 0
    for attestation, want_fmt in (("none", "none"), ("direct", "packed")):
        for alg in (-7, -8):
            for resident in (False, True):
                for pin in (None, "4321"):
                    n += 1
                    state = os.path.join(tmp, "key%d" % n)
                    server = Fido2Server(RP, attestation=attestation)
                    user = {"id": b"user-%d" % n, "name": "alice", "displayName": "Alice"}
                    (cred, fmt), err = register(server, state, user, alg, resident, pin)
                    check(err is None, "registration failed: %s" % err)
                    check(fmt == want_fmt, "fmt %s, want %s" % (fmt, want_fmt))
                    c1, err = authenticate(server, state, [cred], resident, pin)
                    check(err is None, "sign-in failed: %s" % err)
                    c2, err = authenticate(server, state, [cred], resident, pin)
                    check(err is None and c2 > c1, "counter %s then %s (%s)" % (c1, c2, err))
                    print("ok attestation=%s alg=%d resident=%s pin=%s" % (attestation, alg, resident, bool(pin)))

    # Failures, named as a browser names them.
    server = Fido2Server(RP)
    state = os.path.join(tmp, "neg")
    user = {"id": b"user-neg", "name": "bob", "displayName": "Bob"}
    (cred, _), err = register(server, state, user, -7, False, None)
    check(err is None, "registration failed: %s" % err)
    options, _ = server.register_begin(user, credentials=[cred], user_verification="discouraged")
    _, err = vkey("create", options, state)
    check(err == "InvalidStateError", "excluded credential: %s" % err)
    _, err = vkey("create", options, state, origin="https://evil.example.net")
    check(err == "SecurityError", "wrong origin: %s" % err)
    options, _ = server.authenticate_begin([cred], user_verification="discouraged")
    _, err = vkey("get", options, os.path.join(tmp, "empty"))
    check(err == "NotAllowedError", "no matching credential: %s" % err)
    options, _ = server.register_begin(user, user_verification="required")
    _, err = vkey("create", options, os.path.join(tmp, "nopin"))
    check(err == "NotAllowedError", "UV required without PIN: %s" % err)
    print("OK")


if __name__ == "__main__":
    main()
