"""U2F refuses what CTAP2 protects, driven by python-fido2 0.9.1's Ctap1.

A discoverable credential (stored, or deleted through credential
management) and one with credProtect above level 1 must not sign over U2F:
every U2F_AUTHENTICATE control byte answers SW_WRONG_DATA (6A80). With
alwaysUv on, U2F is off: getInfo drops U2F_V2 and every APDU answers
SW_COMMAND_NOT_ALLOWED (6986), CTAP 2.1 section 7.2. Run with
/usr/bin/python3 against a fresh
`vkey run --ephemeral --transport udp --presence auto`.
"""

import os
import time

from fido2.ctap1 import ApduError, Ctap1
from fido2.ctap2 import Ctap2
from fido2.ctap2.config import Config
from fido2.ctap2.credman import CredentialManagement
from fido2.ctap2.pin import ClientPin, PinProtocolV2
from fido2.utils import sha256

import vkeyudp
from vkeyudp import check

RP = {"id": "example.com", "name": "Example RP"}
ES256 = [{"type": "public-key", "alg": -7}]


def make(ctap, user_id, rk, protect=None):
    ext = {"credProtect": protect} if protect else None
    att = ctap.make_credential(os.urandom(32), RP, {"id": user_id, "name": "alice"}, ES256,
                               extensions=ext, options={"rk": rk})
    return att.auth_data.credential_data.credential_id


def sw(fn):
    """The status word of fn, polling while the key asks for the touch."""
    deadline = time.time() + 10
    while True:
        try:
            fn()
        except ApduError as e:
            if e.code == 0x6985 and time.time() < deadline:
                time.sleep(0.05)
                continue
            return e.code
        return 0x9000


def main():
    dev = vkeyudp.open_device()
    ctap = Ctap2(dev)
    ctap1 = Ctap1(dev)
    app, chal = sha256(RP["id"].encode()), os.urandom(32)

    plain = make(ctap, b"plain", False)
    check(sw(lambda: ctap1.authenticate(chal, app, plain)) == 0x9000,
          "a plain non-discoverable credential signs over U2F")
    cases = {
        "discoverable": make(ctap, b"rk", True),
        "credProtect 3": make(ctap, b"cp3", False, 3),
        "credProtect 2": make(ctap, b"cp2", False, 2),
    }
    deleted = make(ctap, b"gone", True)
    ClientPin(ctap, PinProtocolV2()).set_pin("1234")
    cp = ClientPin(ctap, PinProtocolV2())
    token = cp.get_pin_token("1234", ClientPin.PERMISSION.CREDENTIAL_MGMT)
    CredentialManagement(ctap, cp.protocol, token).delete_cred({"type": "public-key", "id": deleted})
    cases["deleted discoverable"] = deleted

    for name, cred in cases.items():
        data = chal + app + bytes([len(cred)]) + cred
        for p1 in (0x03, 0x07, 0x08):
            code = sw(lambda: ctap1.send_apdu(ins=Ctap1.INS.AUTHENTICATE, p1=p1, data=data))
            check(code == 0x6A80, "%s, P1 %02x: SW_WRONG_DATA (got %04x)" % (name, p1, code))

    token = cp.get_pin_token("1234", ClientPin.PERMISSION.AUTHENTICATOR_CFG)
    Config(ctap, cp.protocol, token).toggle_always_uv()
    info = Ctap2(dev).get_info()
    check(info.options.get("alwaysUv") is True and "U2F_V2" not in info.versions,
          "alwaysUv on: getInfo no longer lists U2F_V2")
    check(sw(ctap1.get_version) == 0x6986, "alwaysUv on: U2F_VERSION refused")
    check(sw(lambda: ctap1.register(chal, app)) == 0x6986, "alwaysUv on: U2F_REGISTER refused")
    check(sw(lambda: ctap1.authenticate(chal, app, plain)) == 0x6986, "alwaysUv on: U2F_AUTHENTICATE refused")
    dev.close()
    print("OK")


if __name__ == "__main__":
    vkeyudp.run(main)
