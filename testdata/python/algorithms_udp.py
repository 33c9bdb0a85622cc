"""Every credential algorithm of vkey, registered and asserted through
python-fido2 2.x's Fido2Client and verified by its Fido2Server.

ES256, EdDSA, ES384, ES512, RS256 and PS256 (COSE -7, -8, -35, -36, -257,
-37), one credential each, with the attestation of the key under test:
VKEY_ATTESTATION=packed verifies the packed statement with fido2's
AttestationVerifier up to the key's root (VKEY_ATTESTATION_ROOT, a PEM file
from `vkey attestation`); VKEY_ATTESTATION=none checks the none format.
Run with /usr/bin/python3 and the python-fido2 2.x of .cache/pyfido2 against
a fresh `vkey run --ephemeral --transport udp --presence auto`.
"""

import os

import cryptography
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from fido2.attestation import AttestationVerifier
from fido2.client import DefaultClientDataCollector, Fido2Client
from fido2.cose import PS256, CoseKey
from fido2.utils import bytes2int
from fido2.server import Fido2Server

import vkeyudp
from vkeyudp import check

ORIGIN = "https://example.com"
RP = {"id": "example.com", "name": "Example RP"}
ALGORITHMS = (("ES256", -7), ("EdDSA", -8), ("ES384", -35), ("ES512", -36), ("RS256", -257), ("PS256", -37))


def ps256_salt_workaround():
    """python-fido2 2.2.1 verifies PS256 with PSS.MAX_LENGTH; its Debian
    package depends on python3-cryptography >> 45, and Debian 12's
    cryptography 38 turns MAX_LENGTH into an exact salt length of
    emLen - hLen - 2 (222 bytes for RSA-2048), so it refuses every PS256
    signature with the salt RFC 8230 section 2 prescribes (the hash length,
    32 bytes, which vkey uses). On such a cryptography only, PS256 keys are
    verified with exactly that salt length; nothing else changes."""
    if int(cryptography.__version__.split(".")[0]) >= 45:
        return

    def verify(self, message, signature):
        rsa.RSAPublicNumbers(bytes2int(self[-2]), bytes2int(self[-1])).public_key().verify(
            signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())

    PS256.verify = verify
    print("note: cryptography %s: PS256 verified with RFC 8230's 32-byte salt (python-fido2 2.2.1's package wants cryptography 45 or later)"
          % cryptography.__version__)


class RootVerifier(AttestationVerifier):
    """Trusts the key's own attestation root and nothing else."""

    def __init__(self, root_der):
        super().__init__()
        self.root = root_der

    def ca_lookup(self, result, auth_data):
        return self.root


def main():
    ps256_salt_workaround()
    fmt = os.environ.get("VKEY_ATTESTATION", "packed")
    if fmt == "packed":
        with open(os.environ["VKEY_ATTESTATION_ROOT"], "rb") as f:
            root = x509.load_pem_x509_certificate(f.read()).public_bytes(Encoding.DER)
        server = Fido2Server(RP, attestation="direct", verify_attestation=RootVerifier(root))
    else:
        server = Fido2Server(RP, attestation="none")
    client = Fido2Client(vkeyudp.open_device(), DefaultClientDataCollector(ORIGIN))
    for name, alg in ALGORITHMS:
        check(alg in CoseKey.supported_algorithms(), "python-fido2 verifies %s" % name)
        server.allowed_algorithms = [{"type": "public-key", "alg": alg}]
        options, state = server.register_begin({"id": os.urandom(8), "name": name}, user_verification="discouraged")
        result = client.make_credential(options["publicKey"])
        att = result.response.attestation_object
        check(att.fmt == fmt, "%s: %s attestation" % (name, att.fmt))
        if fmt == "packed":
            check("x5c" in att.att_stmt and att.att_stmt["alg"] == -7,
                  "%s: packed statement with x5c, signed ES256 by the attestation key" % name)
        auth = server.register_complete(state, result)  # verifies the statement up to the root
        cred = auth.credential_data
        check(cred.public_key[3] == alg and type(cred.public_key) is CoseKey.for_alg(alg),
              "%s: registered (%s)" % (name, type(cred.public_key).__name__))
        for _ in range(2):
            options, state = server.authenticate_begin([cred], user_verification="discouraged")
            resp = client.get_assertion(options["publicKey"]).get_response(0)
            server.authenticate_complete(state, [cred], resp)
        check(True, "%s: two assertions verified by Fido2Server" % name)


if __name__ == "__main__":
    vkeyudp.run(main)
