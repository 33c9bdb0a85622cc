"""U2F with TPM keys, driven by python-fido2 0.9.1's Ctap1.

Against `vkey run --keys tpm --tpm swtpm:SOCKET --transport udp
--presence auto`: U2F_REGISTER answers a registration whose attestation
signature RegistrationData.verify accepts, with a key handle of at most
255 bytes (FIDO U2F raw message formats section 4.3); check-only knows the
handle (6985); U2F_AUTHENTICATE signs with the registered key
(SignatureData.verify), with user presence and a growing counter, and
dont-enforce (0x08) signs without it. The key handles are written, hex,
one per line, to the file VKEY_U2F_HANDLES names when it is set, and
handles read from VKEY_U2F_CHECK (same format: "handle public-key
counter") must authenticate with a larger counter, so that a test can
check them after a restart. Run with
/usr/bin/python3.
"""

import binascii
import os
import time

from fido2.ctap1 import ApduError, Ctap1, SignatureData
from fido2.utils import sha256

import vkeyudp
from vkeyudp import check, poll_u2f as poll

APP_ID = "https://u2f.example.com"


def status(fn):
    """The status word fn ends with."""
    try:
        fn()
    except ApduError as e:
        return e.code
    return 0x9000


def authenticate(ctap1, app, handle, public_key, last):
    """Authenticate with enforce and dont-enforce; return the last counter."""
    chal = os.urandom(32)
    check(status(lambda: ctap1.authenticate(chal, app, handle, check_only=True)) == 0x6985,
          "check-only knows the %d-byte handle" % len(handle))
    start = time.time()
    sig = poll(lambda: ctap1.authenticate(chal, app, handle))
    took = time.time() - start
    sig.verify(app, chal, public_key)
    check(sig.user_presence & 1 == 1 and sig.counter > last,
          "U2F_AUTHENTICATE (%.0f ms): UP set, counter %d after %d" % (took * 1000, sig.counter, last))
    chal = os.urandom(32)
    data = chal + app + bytes([len(handle)]) + handle
    raw = ctap1.send_apdu(ins=Ctap1.INS.AUTHENTICATE, p1=0x08, data=data)
    plain = SignatureData(raw)
    plain.verify(app, chal, public_key)
    check(plain.user_presence & 1 == 0 and plain.counter > sig.counter,
          "dont-enforce: UP clear, counter %d after %d" % (plain.counter, sig.counter))
    return plain.counter


def main():
    dev = vkeyudp.open_device()
    ctap1 = Ctap1(dev)
    app = sha256(APP_ID.encode())
    check(ctap1.get_version() == "U2F_V2", "U2F_VERSION is U2F_V2")

    lines = []
    for want in os.environ.get("VKEY_U2F_CHECK", "") and open(os.environ["VKEY_U2F_CHECK"]).read().split("\n"):
        if want:
            handle, public_key, last = want.split()
            authenticate(ctap1, app, binascii.unhexlify(handle), binascii.unhexlify(public_key), int(last))
    for i in range(2):
        chal = os.urandom(32)
        start = time.time()
        reg = poll(lambda: ctap1.register(chal, app))
        took = time.time() - start
        reg.verify(app, chal)
        check(len(reg.key_handle) <= 255,
              "U2F_REGISTER (%.0f ms): attestation verifies, %d-byte key handle"
              % (took * 1000, len(reg.key_handle)))
        last = authenticate(ctap1, app, reg.key_handle, reg.public_key, 0)
        other = sha256(b"https://other.example")
        check(status(lambda: ctap1.authenticate(os.urandom(32), other, reg.key_handle, check_only=True)) == 0x6A80,
              "another application's check-only: 6A80")
        lines.append("%s %s %d" % (binascii.hexlify(reg.key_handle).decode(), binascii.hexlify(reg.public_key).decode(), last))
    if os.environ.get("VKEY_U2F_HANDLES"):
        with open(os.environ["VKEY_U2F_HANDLES"], "w") as f:
            f.write("\n".join(lines) + "\n")
    dev.close()
    print("OK")


if __name__ == "__main__":
    vkeyudp.run(main)
