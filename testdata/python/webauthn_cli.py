"""python-fido2 0.9.1's Fido2Server verifies what `vkey webauthn` makes.

The relying party's options go, as JSON, to `vkey webauthn create|get
--ephemeral --state DIR` (the binary in $VKEY_BIN), and its response JSON
back to Fido2Server: attestation none and packed, ES256 and EdDSA,
discoverable or not, with and without a PIN (user verification required);
then the failures a browser reports, by DOMException name. Run with
/usr/bin/python3 (Debian's python3-fido2). Exits non-zero, with the reason,
on any failure.

With VKEY_TPM_DEVICE (the pty of a `vkey run --keys tpm --attestation tpm`)
and VKEY_TPM_ROOT (its attestation root, PEM) set, it also registers through
`vkey webauthn create --device` with attestation "direct", checks that the
statement is fmt "tpm" and verifies it with fido2.attestation.TpmAttestation
and the x5c chain to that root, then signs in with `vkey webauthn get
--device`. Without them it says it skips that case.
"""

import base64
import enum
import json
import os
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from fido2.attestation import tpm as fido2_tpm
from fido2.server import AttestationVerifier, Fido2Server
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


def fix_tpm_ecc():
    """python-fido2 0.9.1 cannot make the public key of any ECC pubArea:
    TpmsEccPoint stores y as x ("self.x = y") and TpmPublicFormat.public_key
    calls parameters.to_curve() on TpmsEccParms, which has no to_curve
    (AttributeError). Where those two defects are present, correct them (the
    point is built from the pubArea's own x, y and curve); every check of
    TpmAttestation.verify still runs."""
    if fido2_tpm.TpmsEccPoint(b"x", b"y").x == b"x":
        return False

    def point_init(self, x, y):
        self.x, self.y = x, y

    fido2_tpm.TpmsEccPoint.__init__ = point_init
    orig = fido2_tpm.TpmPublicFormat.public_key

    def public_key(self):
        if self.sign_alg != fido2_tpm.TpmAlgAsym.ECC:
            return orig(self)
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(self.unique.x, "big"), int.from_bytes(self.unique.y, "big"),
            self.parameters.curve_id.to_curve()).public_key(default_backend())

    fido2_tpm.TpmPublicFormat.public_key = public_key
    return True


class RootVerifier(AttestationVerifier):
    """Trusts one attestation root (DER): vkey's, from `vkey attestation`."""

    def __init__(self, root):
        super().__init__([fido2_tpm.TpmAttestation()])
        self.root = root

    def ca_lookup(self, attestation_result, auth_data):
        return [self.root]


def vkey_device(ceremony, options, device):
    p = subprocess.run(
        [BIN, "webauthn", ceremony, "--device", device, "--origin", ORIGIN, "--json"],
        input=json.dumps(to_json(options)).encode(), capture_output=True, timeout=60,
    )
    check(p.returncode == 0, "vkey webauthn %s --device: exit %d %s %s" % (ceremony, p.returncode, p.stdout, p.stderr))
    return json.loads(p.stdout.decode())


def tpm_case(alg):
    """tpm attestation of an alg key from a TPM-backed vkey, verified to its root."""
    device, root_file = os.environ.get("VKEY_TPM_DEVICE"), os.environ.get("VKEY_TPM_ROOT")
    if not device or not root_file:
        print("skip attestation=tpm: VKEY_TPM_DEVICE and VKEY_TPM_ROOT are not set (no swtpm)")
        return
    with open(root_file, "rb") as f:
        root = x509.load_pem_x509_certificate(f.read(), default_backend()).public_bytes(Encoding.DER)
    patched = fix_tpm_ecc()
    verifier = RootVerifier(root)
    server = Fido2Server(RP, attestation="direct", verify_attestation=verifier)
    user = {"id": b"user-tpm", "name": "carol", "displayName": "Carol"}
    options, st = server.register_begin(user, user_verification="discouraged")
    options = to_json(options)
    options["publicKey"]["pubKeyCredParams"] = [{"type": "public-key", "alg": alg}]
    r = vkey_device("create", options, device)["response"]
    att = AttestationObject(unb64(r["attestationObject"]))
    check(att.fmt == "tpm", "fmt %s, want tpm" % att.fmt)
    client_data = CollectedClientData(unb64(r["clientDataJSON"]))
    # register_complete runs the verifier: TpmAttestation.verify (AIK
    # certificate requirements, pubArea is the credential key, extraData is
    # the hash of authData||clientDataHash, certInfo names pubArea, sig over
    # certInfo by the AIK) and the x5c chain to vkey's root.
    auth_data = server.register_complete(st, client_data, att)
    try:
        verifier.verify_attestation(att, b"\0" * 32)
        check(False, "a tpm statement verified for another clientDataHash")
    except Exception as e:  # noqa: BLE001 - any rejection is the point
        check("does not sign" in str(e), "wrong clientDataHash rejected for the wrong reason: %r" % e)
    try:  # the chain is checked: the AIK certificate is no root of itself
        RootVerifier(att.att_statement["x5c"][0]).verify_attestation(att, client_data.hash)
        check(False, "a tpm statement verified with another root")
    except Exception as e:  # noqa: BLE001
        check(type(e).__name__ == "UntrustedAttestation", "another root rejected for the wrong reason: %r" % e)
    cred = auth_data.credential_data
    options, st = server.authenticate_begin([cred], user_verification="discouraged")
    a = vkey_device("get", options, device)
    r = a["response"]
    server.authenticate_complete(st, [cred], unb64(a["rawId"]), CollectedClientData(unb64(r["clientDataJSON"])),
                                 AuthenticatorData(unb64(r["authenticatorData"])), unb64(r["signature"]))
    print("ok attestation=tpm alg=%d (TpmAttestation and chain to vkey's root verified%s)" %
          (alg, ", with fido2 0.9.1's ECC pubArea defects corrected" if patched and alg == -7 else ""))


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
    # ES256 and RS256 (issue 13: RSA-2048 keys in the TPM). Not PS256:
    # fido2 0.9.1 verifies PS256 only with the longest salt
    # (padding.PSS.MAX_LENGTH, 222 bytes), not RFC 8230's 32, so it refuses
    # every conforming PS256 signature, software keys' too.
    for alg in (-7, -257):
        tpm_case(alg)
    print("OK")


if __name__ == "__main__":
    main()
