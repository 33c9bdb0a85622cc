"""PIN-protected flows as platforms run them (issue 16), driven by
python-fido2 0.9.1's Ctap2 and ClientPin over UDP, under PIN/UV auth
protocols 1 and 2.

Run with /usr/bin/python3 against a fresh
`vkey run --ephemeral --transport udp --presence auto --ep-rp-id corp.example`.
Exits non-zero, with the reason, on any failure.
"""

import os

from fido2 import cbor
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.blob import LargeBlobs
from fido2.ctap2.config import Config
from fido2.ctap2.credman import CredentialManagement
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2

import vkeyudp
from vkeyudp import check, expect_error

PIN = "1234"
ERR = CtapError.ERR
UP, UV = 0x01, 0x04
ES256 = [{"type": "public-key", "alg": -7}]
CMD_CRED_MGMT_PRE = 0x41


def cdh():
    return os.urandom(32)


def pk(cred_id):
    return {"type": "public-key", "id": cred_id}


class Flows:
    def __init__(self, ctap, proto):
        self.ctap, self.proto = ctap, proto
        self.cp = ClientPin(ctap, proto)
        self.name = "protocol %d" % proto.VERSION

    def token(self, perms, rp_id=None):
        return self.cp.get_pin_token(PIN, perms, rp_id)

    def legacy_token(self):
        """getPinToken (0x05): 0.9.1 sends 0x09 when the key has pinUvAuthToken."""
        self.cp._supports_permissions = False
        try:
            return self.cp.get_pin_token(PIN)
        finally:
            self.cp._supports_permissions = True

    def param(self, token, message):
        return self.proto.authenticate(token, message)

    def register(self, rp_id, user_id, rk=False, token=None, exclude=None, name="alice"):
        if token is None:
            token = self.token(ClientPin.PERMISSION.MAKE_CREDENTIAL, rp_id)
        h = cdh()
        att = self.ctap.make_credential(
            h, {"id": rp_id, "name": rp_id}, {"id": user_id, "name": name, "displayName": name.title()},
            ES256, exclude_list=exclude, options={"rk": rk} if rk else None,
            pin_uv_param=self.param(token, h), pin_uv_protocol=self.proto.VERSION)
        return att.auth_data.credential_data.credential_id

    def assertion(self, rp_id, token, allow=None, up=True):
        h = cdh()
        return self.ctap.get_assertion(
            rp_id, h, allow_list=allow, options={"up": up},
            pin_uv_param=self.param(token, h), pin_uv_protocol=self.proto.VERSION)


def firefox_sign_in(f):
    """Firefox (authenticator-rs): a token, a silent up=false assertion over
    the allow list, then the real assertion with the same token."""
    rp = "firefox.example"
    ids = [f.register(rp, os.urandom(16)) for _ in range(3)]
    token = f.token(ClientPin.PERMISSION.GET_ASSERTION, rp)
    allow = [pk(os.urandom(64))] + [pk(i) for i in ids]
    silent = f.assertion(rp, token, allow, up=False)
    check(silent.auth_data.flags & UP == 0, "%s: silent pre-flight has no UP flag" % f.name)
    real = f.assertion(rp, token, [silent.credential])
    check(real.auth_data.flags & (UP | UV) == UP | UV,
          "%s: Firefox sign-in: the real assertion with the same token succeeds with UP and UV" % f.name)
    expect_error(ERR.PIN_AUTH_INVALID, lambda: f.assertion(rp, token, [pk(ids[0])]),
                 "%s: the up=true assertion used the token's ga permission up" % f.name)
    # Sign in with an allowList of several credentials.
    token = f.token(ClientPin.PERMISSION.GET_ASSERTION, rp)
    got = f.assertion(rp, token, [pk(i) for i in ids])
    check(got.credential["id"] in ids, "%s: sign-in with an allowList of several credentials" % f.name)


def chromium_exclude(f):
    """Chromium: a token with mc and ga, a silent getAssertion over the
    exclude list, then makeCredential with the same token."""
    rp = "chromium.example"
    mine = f.register(rp, os.urandom(16))
    elsewhere = f.register("elsewhere.example", os.urandom(16))
    perms = ClientPin.PERMISSION.MAKE_CREDENTIAL | ClientPin.PERMISSION.GET_ASSERTION
    for exclude, want, what in (([pk(elsewhere)], None, "not excluded"),
                                ([pk(elsewhere), pk(mine)], ERR.CREDENTIAL_EXCLUDED, "excluded")):
        token = f.token(perms, rp)
        if want is None:
            expect_error(ERR.NO_CREDENTIALS, lambda: f.assertion(rp, token, exclude, up=False),
                         "%s: exclude-list probe finds nothing" % f.name)
            f.register(rp, os.urandom(16), rk=True, token=token, exclude=exclude)
            check(True, "%s: register with an excludeList after the probe, same token" % f.name)
        else:
            f.assertion(rp, token, exclude, up=False)
            expect_error(want, lambda: f.register(rp, os.urandom(16), token=token, exclude=exclude),
                         "%s: register with an excludeList holding our credential, same token" % f.name)


def refusals(f):
    """Tokens that may not do the job are CTAP2_ERR_PIN_AUTH_INVALID."""
    P = ClientPin.PERMISSION
    rp = "refusal.example"
    cred = f.register(rp, b"\x01", rk=True)
    expect_error(ERR.PIN_AUTH_INVALID, lambda: f.register(rp, b"\x02", token=f.token(P.GET_ASSERTION)),
                 "%s: mc with a token without mc" % f.name)
    expect_error(ERR.PIN_AUTH_INVALID, lambda: f.register(rp, b"\x02", token=f.token(P.MAKE_CREDENTIAL, "other.example")),
                 "%s: mc with a token bound to another RP" % f.name)
    expect_error(ERR.PIN_AUTH_INVALID, lambda: f.assertion(rp, f.token(P.MAKE_CREDENTIAL), [pk(cred)]),
                 "%s: ga with a token without ga" % f.name)
    expect_error(ERR.PIN_AUTH_INVALID, lambda: f.assertion(rp, f.token(P.GET_ASSERTION, "other.example"), [pk(cred)]),
                 "%s: ga with a token bound to another RP" % f.name)
    cm = CredentialManagement(f.ctap, f.proto, f.token(P.MAKE_CREDENTIAL))
    expect_error(ERR.PIN_AUTH_INVALID, cm.get_metadata, "%s: credMgmt with a token without cm" % f.name)
    lb = LargeBlobs(f.ctap, f.proto, f.token(P.CREDENTIAL_MGMT))
    expect_error(ERR.PIN_AUTH_INVALID, lambda: lb.write_blob_array([]), "%s: largeBlobs with a token without lbw" % f.name)
    cfg = Config(f.ctap, f.proto, f.token(P.LARGE_BLOB_WRITE))
    expect_error(ERR.PIN_AUTH_INVALID, lambda: cfg.set_min_pin_length(4), "%s: config with a token without acfg" % f.name)
    expect_error(ERR.UNAUTHORIZED_PERMISSION, lambda: f.token(P.BIO_ENROLL),
                 "%s: asking a permission the key cannot grant is 0x40" % f.name)


def user_member(f):
    """One account: the id only; several accounts after UV: with names."""
    one, two = "one-%d.example" % f.proto.VERSION, "two-%d.example" % f.proto.VERSION
    f.register(one, b"\x11", rk=True, name="solo")
    f.register(two, b"\x21", rk=True, name="first")
    f.register(two, b"\x22", rk=True, name="second")
    r = f.assertion(one, f.token(ClientPin.PERMISSION.GET_ASSERTION, one))
    check(r.user == {"id": b"\x11"}, "%s: a single account gives only its user id (got %r)" % (f.name, r.user))
    r = f.assertion(two, f.token(ClientPin.PERMISSION.GET_ASSERTION, two))
    rest = f.ctap.get_next_assertion()
    check(r.number_of_credentials == 2 and r.user.get("name") and rest.user.get("displayName"),
          "%s: several accounts after UV give name and displayName" % f.name)


def preview_cred_mgmt(f):
    """0x41 takes a getPinToken token, as FIDO_2_1_PRE keys did."""
    token = f.legacy_token()
    msg = bytes([CredentialManagement.CMD.GET_CREDS_METADATA])
    resp = f.ctap.send_cbor(CMD_CRED_MGMT_PRE, {1: CredentialManagement.CMD.GET_CREDS_METADATA,
                                                3: f.proto.VERSION, 4: f.param(token, msg)})
    check(resp.get(1, 0) >= 1, "%s: preview credential management with a getPinToken token" % f.name)
    cm = CredentialManagement(f.ctap, f.proto, token)
    expect_error(ERR.PIN_AUTH_INVALID, cm.get_metadata,
                 "%s: 0x0A wants the cm permission a getPinToken token lacks" % f.name)


def lists(ctap):
    """Empty lists are no lists; incomplete descriptors are refused."""
    f = Flows(ctap, PinProtocolV2())
    rp = "lists.example"
    for i in range(2):
        f.register(rp, bytes([0x30 + i]), rk=True)
    token = f.token(ClientPin.PERMISSION.GET_ASSERTION, rp)
    r = f.assertion(rp, token, allow=[])
    check(r.number_of_credentials == 2, "an empty allowList finds the discoverable credentials")
    h = cdh()
    expect_error(ERR.MISSING_PARAMETER,
                 lambda: ctap.get_assertion(rp, h, allow_list=[{"type": "public-key"}], options={"up": False}),
                 "an allowList descriptor without id")
    expect_error(ERR.MISSING_PARAMETER,
                 lambda: ctap.get_assertion(rp, h, allow_list=[{"id": b"x" * 32}], options={"up": False}),
                 "an allowList descriptor without type")
    expect_error(ERR.MISSING_PARAMETER,
                 lambda: f.register(rp, b"\x3f", exclude=[{"type": "public-key"}]),
                 "an excludeList descriptor without id")
    f.register(rp, b"\x40", exclude=[])
    f.register(rp, b"\x41", exclude=[{"type": "future-key", "id": b"y" * 16}])
    check(True, "an empty excludeList, and one of an unknown type, register")


def empty_user_id(ctap):
    f = Flows(ctap, PinProtocolV2())
    rp = "empty-user.example"
    f.register(rp, b"", rk=True)
    r = f.assertion(rp, f.token(ClientPin.PERMISSION.GET_ASSERTION, rp))
    check(r.user is None, "a credential with an empty user id has no user member, never a null id")


def every_limit(ctap):
    """maxCredentialCountInList of the longest IDs, a 253-byte RP ID, the
    longest user entity and every extension, over CTAPHID."""
    info = ctap.get_info()
    count, id_len = info.max_creds_in_list, info.max_cred_id_length
    f = Flows(ctap, PinProtocolV2())
    label = "a" * 62
    rp = ".".join([label] * 4) + ".x"
    check(len(rp) == 253, "a 253-byte RP ID")
    transports = ["usb", "nfc", "ble", "hybrid", "internal"]

    def full(real=None):
        n = count - (1 if real else 0)
        out = [{"type": "public-key", "id": os.urandom(id_len), "transports": transports} for _ in range(n)]
        if real:
            out.append({"type": "public-key", "id": real, "transports": transports})
        return out

    perms = ClientPin.PERMISSION.MAKE_CREDENTIAL | ClientPin.PERMISSION.GET_ASSERTION
    token = f.token(perms, rp)
    h = cdh()
    name = "n" * 64
    req = {1: h, 2: {"id": rp, "name": name}, 3: {"id": b"u" * 64, "name": name, "displayName": name},
           4: [{"type": "public-key", "alg": a} for a in (-7, -8, -19)], 5: full(),
           6: {"credProtect": 2, "hmac-secret": True, "credBlob": b"b" * 32, "largeBlobKey": True, "minPinLength": True},
           7: {"rk": True}, 8: f.param(token, h), 9: f.proto.VERSION}
    size = 1 + len(cbor.encode(req))
    check(size <= info.max_msg_size, "makeCredential with every limit is %d of %d bytes" % (size, info.max_msg_size))
    att = ctap.send_cbor(Ctap2.CMD.MAKE_CREDENTIAL, req)
    cred_id = att[2][55:55 + int.from_bytes(att[2][53:55], "big")]
    check(len(cred_id) <= 128, "makeCredential at every limit: a %d-byte credential ID" % len(cred_id))
    token = f.token(ClientPin.PERMISSION.GET_ASSERTION, rp)
    key_agreement, shared = f.cp._get_shared_secret()
    salt_enc = f.proto.encrypt(shared, os.urandom(64))
    h = cdh()
    req = {1: rp, 2: h, 3: full(cred_id),
           4: {"hmac-secret": {1: key_agreement, 2: salt_enc, 3: f.proto.authenticate(shared, salt_enc), 4: f.proto.VERSION},
               "credBlob": True, "largeBlobKey": True},
           5: {"up": True}, 6: f.param(token, h), 7: f.proto.VERSION}
    size = 1 + len(cbor.encode(req))
    check(size <= info.max_msg_size, "getAssertion with every limit is %d of %d bytes" % (size, info.max_msg_size))
    resp = ctap.send_cbor(Ctap2.CMD.GET_ASSERTION, req)
    check(resp[1]["id"] == cred_id and 7 in resp, "getAssertion at every limit of %d IDs of %d bytes" % (count, id_len))


def enterprise(ctap):
    f = Flows(ctap, PinProtocolV2())
    Config(ctap, f.proto, f.token(ClientPin.PERMISSION.AUTHENTICATOR_CFG))._call(Config.CMD.ENABLE_ENTERPRISE_ATT)

    def register(rp, ep):
        token = f.token(ClientPin.PERMISSION.MAKE_CREDENTIAL, rp)
        h = cdh()
        att = ctap.send_cbor(Ctap2.CMD.MAKE_CREDENTIAL, {
            1: h, 2: {"id": rp}, 3: {"id": os.urandom(8)}, 4: ES256, 8: f.param(token, h), 9: 2, 10: ep})
        return att[3]["x5c"][0], att.get(4, False)

    batch, ep = register("example.com", 1)
    check(not ep, "vendor-facilitated for an RP ID not configured: ordinary attestation, no epAtt")
    vendor, ep = register("corp.example", 1)
    check(ep and vendor != batch, "vendor-facilitated for --ep-rp-id corp.example: enterprise certificate, epAtt")
    platform, ep = register("example.com", 2)
    check(ep and platform != batch, "platform-managed: enterprise certificate, epAtt")


def forced_change(ctap):
    """getPinToken while a PIN change is forced: CTAP2_ERR_PIN_INVALID."""
    for proto in (PinProtocolV1(), PinProtocolV2()):
        f = Flows(ctap, proto)
        Config(ctap, proto, f.token(ClientPin.PERMISSION.AUTHENTICATOR_CFG)).set_min_pin_length(force_change_pin=True)
        expect_error(ERR.PIN_INVALID, f.legacy_token, "%s: getPinToken with a forced PIN change" % f.name)
        expect_error(ERR.PIN_POLICY_VIOLATION, lambda: f.token(ClientPin.PERMISSION.GET_ASSERTION),
                     "%s: getPinUvAuthTokenUsingPinWithPermissions with a forced PIN change" % f.name)
        f.cp.change_pin(PIN, "4321")
        f.cp.change_pin("4321", PIN)
        check(f.cp.get_pin_retries()[0] == 8, "%s: the right PIN kept its retries" % f.name)


def main():
    ctap = Ctap2(vkeyudp.open_device())
    ClientPin(ctap, PinProtocolV2()).set_pin(PIN)
    ctap = Ctap2(ctap.device)  # getInfo again: clientPin is set now
    for proto in (PinProtocolV1(), PinProtocolV2()):
        f = Flows(ctap, proto)
        firefox_sign_in(f)
        chromium_exclude(f)
        refusals(f)
        user_member(f)
        preview_cred_mgmt(f)
    lists(ctap)
    empty_user_id(ctap)
    every_limit(ctap)
    enterprise(ctap)
    forced_change(ctap)


if __name__ == "__main__":
    vkeyudp.run(main)
