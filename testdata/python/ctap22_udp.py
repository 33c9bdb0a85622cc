"""CTAP 2.2 features of vkey, driven by python-fido2 2.x over UDP.

Debian 12's python3-fido2 0.9.1 knows no CTAP 2.2; this script runs with the
python-fido2 2.x that `make deps` unpacks from Debian sid into .cache/pyfido2
(on PYTHONPATH before /usr's), and uses that library's own client code:

- getInfo as it parses it (attestationFormats 0x16, maxPINLength 0x1D,
  perCredMgmtRO, the extensions), and attestationFormatsPreference (0x0B) at
  makeCredential (CTAP 2.2 sections 6.4, 6.1);
- PRF at registration (hmac-secret-mc, section 12.7) through Fido2Client
  under PIN/UV auth protocols 1 and 2, with and without UV;
- the persistent pinUvAuthToken (pcmr, section 6.5.5.7) with read-only
  credential management and its refusals, and encIdentifier (section 6.4)
  decrypted by Info.get_identifier;
- thirdPartyPayment (section 12.9) through ThirdPartyPaymentExtension and
  PaymentClientDataCollector, and credential management's field 0x0C.

Run with /usr/bin/python3 against a fresh
`vkey run --ephemeral --transport udp --presence auto --attestation packed`.
Exits non-zero, with the reason, on any failure.
"""

import os

from fido2.attestation import PackedAttestation
from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.client import _DEFAULT_EXTENSIONS
from fido2.ctap import CtapError
from fido2.ctap2 import AttestationResponse, Ctap2
from fido2.ctap2.base import args
from fido2.ctap2.credman import CredentialManagement
from fido2.ctap2.extensions import ThirdPartyPaymentExtension
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.payment import PaymentClientDataCollector
from fido2.server import Fido2Server
from fido2.utils import sha256

import vkeyudp
from vkeyudp import check, expect_error

ORIGIN = "https://example.com"
RP = {"id": "example.com", "name": "Example RP"}
PIN = "1234"


class PinInteraction(UserInteraction):
    """The platform's user: knows the PIN, is always there."""

    def request_pin(self, permissions, rp_id):
        return PIN

    def request_uv(self, permissions, rp_id):
        return True


class Recorder:
    """Records the CTAP requests Ctap2 sends (command, decoded arguments)."""

    def __init__(self):
        self.sent = []
        orig = Ctap2.send_cbor

        def send_cbor(ctap, cmd, data=None, **kw):
            self.sent.append((cmd, data))
            return orig(ctap, cmd, data, **kw)

        Ctap2.send_cbor = send_cbor

    def last(self, cmd):
        for c, data in reversed(self.sent):
            if c == cmd:
                return data
        raise SystemExit("FAIL: no %r request was sent" % cmd)


def using_protocol(proto):
    """Makes Fido2Client negotiate PIN/UV auth protocol proto.

    Fido2Client takes the first of ClientPin.PROTOCOLS the key offers (2,
    then 1): a platform that speaks only protocol 1 is modelled by that list.
    """
    ClientPin.PROTOCOLS = [proto]


def get_info(ctap):
    info = ctap.get_info()
    raw = ctap.send_cbor(Ctap2.CMD.GET_INFO)
    for ext in ("hmac-secret", "hmac-secret-mc", "thirdPartyPayment"):
        check(ext in info.extensions, "getInfo extensions has %s" % ext)
    check(info.options.get("perCredMgmtRO") is True, "getInfo option perCredMgmtRO")
    # python-fido2's defaults for these two fields equal vkey's values, so
    # the raw map shows they are really sent.
    check(0x16 in raw and info.attestation_formats == ["packed", "none"],
          "getInfo attestationFormats (0x16) is [packed, none]: %r" % info.attestation_formats)
    check(0x1D in raw and info.max_pin_length == 63, "getInfo maxPINLength (0x1D) is 63")
    check([a["alg"] for a in info.algorithms] == [-7, -8, -35, -36, -257, -37],
          "getInfo algorithms ES256, EdDSA, ES384, ES512, RS256, PS256")
    check("FIDO_2_2" not in info.versions, "no FIDO_2_2 in versions (vkey lacks the 2.2 reset and PIN-complexity fields)")
    check(info.enc_identifier is None, "no encIdentifier before a persistent token exists")


def attestation_formats_preference(ctap):
    """attestationFormatsPreference (makeCredential 0x0B, CTAP 2.2 section
    6.1.2 step 17): the first format the key supports wins; none means none.
    python-fido2 2.2.1's Ctap2.make_credential has no parameter for it, so
    the request is built with its args() and parsed by AttestationResponse."""
    user = {"id": b"formats", "name": "formats"}
    for pref, want in ((["none"], "none"), (["packed"], "packed"), (["tpm", "none"], "none"),
                       (["tpm", "packed", "none"], "packed"), (["apple"], "packed"), (None, "packed")):
        cdh = os.urandom(32)
        resp = AttestationResponse.from_dict(ctap.send_cbor(
            Ctap2.CMD.MAKE_CREDENTIAL,
            args(cdh, RP, user, [{"type": "public-key", "alg": -7}], None, None, None, None, None, None, pref)))
        check(resp.fmt == want, "attestationFormatsPreference %r gives %s (got %s)" % (pref, want, resp.fmt))
        if want == "none":
            check(resp.att_stmt == {}, "none: empty attStmt")
        else:
            PackedAttestation().verify(resp.att_stmt, resp.auth_data, cdh)
            check("x5c" in resp.att_stmt, "packed (x5c) verified by PackedAttestation")
    expect_error(CtapError.ERR.CBOR_UNEXPECTED_TYPE,
                 lambda: ctap.send_cbor(Ctap2.CMD.MAKE_CREDENTIAL, args(
                     os.urandom(32), RP, user, [{"type": "public-key", "alg": -7}],
                     None, None, None, None, None, None, "packed")),
                 "attestationFormatsPreference that is not an array is CTAP2_ERR_CBOR_UNEXPECTED_TYPE")


def prf(dev, rec, proto):
    """PRF through hmac-secret-mc: results at create equal results at get."""
    using_protocol(proto)
    client = Fido2Client(dev, DefaultClientDataCollector(ORIGIN), PinInteraction())
    server = Fido2Server(RP, attestation="none")
    s1, s2, s3 = os.urandom(32), os.urandom(32), os.urandom(32)
    name = "protocol %d" % proto.VERSION
    for uv in ("required", "discouraged"):
        what = "%s, UV %s" % (name, uv)
        options, state = server.register_begin(
            {"id": os.urandom(8), "name": "prf"}, user_verification=uv)
        result = client.make_credential(
            {**options["publicKey"], "extensions": {"prf": {"eval": {"first": s1, "second": s2}}}})
        mc = rec.last(Ctap2.CMD.MAKE_CREDENTIAL)
        check(mc[6]["hmac-secret-mc"][4] == proto.VERSION, "%s: hmac-secret-mc sent under protocol %d" % (what, proto.VERSION))
        check((mc.get(9) == proto.VERSION) == (uv == "required"), "%s: pinUvAuthParam %s" % (what, "sent" if uv == "required" else "not sent"))
        auth = server.register_complete(state, result)
        check(auth.is_user_verified() == (uv == "required"), "%s: UV flag %s" % (what, uv == "required"))
        out = result.client_extension_results.prf
        check(out is not None and out.enabled is True, "%s: prf enabled at create" % what)
        check(out.results is not None and len(out.results.first) == 32 and len(out.results.second) == 32,
              "%s: prf results at create (hmac-secret-mc)" % what)
        created = out.results
        cred = auth.credential_data

        def get(first, second=None, uv=uv):
            ev = {"first": first} if second is None else {"first": first, "second": second}
            options, state = server.authenticate_begin([cred], user_verification=uv)
            sel = client.get_assertion({**options["publicKey"], "extensions": {"prf": {"eval": ev}}})
            resp = sel.get_response(0)
            server.authenticate_complete(state, [cred], resp)
            return resp.client_extension_results.prf.results

        got = get(s1, s3)
        check(got.first == created.first, "%s: get with the first salt equals create's first result" % what)
        check(got.second not in (created.first, created.second), "%s: another salt gives another result" % what)
        check(get(s2).first == created.second, "%s: get with the second salt equals create's second result" % what)
        if uv == "required":
            check(get(s1, uv="discouraged").first != created.first,
                  "%s: without UV the same salt gives another result (CredRandomWithoutUV)" % what)
    using_protocol(PinProtocolV2)
    ClientPin.PROTOCOLS = [PinProtocolV2, PinProtocolV1]


def hmac_secret_mc_errors(ctap):
    """hmac-secret-mc built by hand with python-fido2's PIN protocol code:
    a bad saltAuth is CTAP2_ERR_PIN_AUTH_INVALID (section 12.7, as for
    hmac-secret at getAssertion), and without hmac-secret: true there is
    no output."""
    for proto in (PinProtocolV1(), PinProtocolV2()):
        key_agreement, shared = ClientPin(ctap, proto)._get_shared_secret()
        salt_enc = proto.encrypt(shared, os.urandom(32))
        good = {1: key_agreement, 2: salt_enc, 3: proto.authenticate(shared, salt_enc), 4: proto.VERSION}
        bad = dict(good)
        bad[3] = bytes(b ^ 1 for b in good[3])

        def make(ext):
            return AttestationResponse.from_dict(ctap.send_cbor(Ctap2.CMD.MAKE_CREDENTIAL, args(
                os.urandom(32), RP, {"id": b"mc", "name": "mc"}, [{"type": "public-key", "alg": -7}], None, ext)))

        expect_error(CtapError.ERR.PIN_AUTH_INVALID, lambda: make({"hmac-secret": True, "hmac-secret-mc": bad}),
                     "protocol %d: hmac-secret-mc with a bad saltAuth is CTAP2_ERR_PIN_AUTH_INVALID" % proto.VERSION)
        ext = make({"hmac-secret-mc": good}).auth_data.extensions or {}
        check("hmac-secret-mc" not in ext, "protocol %d: hmac-secret-mc without hmac-secret: true gives no output" % proto.VERSION)
        ext = make({"hmac-secret": True, "hmac-secret-mc": good}).auth_data.extensions or {}
        check(ext.get("hmac-secret") is True and len(proto.decrypt(shared, ext["hmac-secret-mc"])) == 32,
              "protocol %d: hmac-secret-mc output decrypts to 32 bytes" % proto.VERSION)


def persistent_token(dev, proto):
    """pcmr: read-only credential management, refusals, encIdentifier."""
    ctap = Ctap2(dev)
    name = "protocol %d" % proto.VERSION
    cp = ClientPin(ctap, proto())
    P = ClientPin.PERMISSION
    expect_error(CtapError.ERR.INVALID_PARAMETER,
                 lambda: cp.get_pin_token(PIN, P.PERSISTENT_CREDENTIAL_MGMT | P.CREDENTIAL_MGMT),
                 "%s: pcmr with another permission is CTAP1_ERR_INVALID_PARAMETER" % name)
    token = cp.get_pin_token(PIN, P.PERSISTENT_CREDENTIAL_MGMT)
    check(len(token) == 32, "%s: persistent token" % name)
    # An ordinary token beside it (the platform signs in) leaves it valid.
    cp.get_pin_token(PIN, P.GET_ASSERTION, "other.example")

    cm = CredentialManagement(ctap, proto(), token)
    meta = cm.get_metadata()
    count = meta[CredentialManagement.RESULT.EXISTING_CRED_COUNT]
    check(count >= 1, "%s: credential metadata with the persistent token (%d)" % (name, count))
    rps = cm.enumerate_rps()
    check(len(rps) >= 1, "%s: RPs enumerated with the persistent token" % name)
    creds = []
    for rp in rps:
        creds += cm.enumerate_creds(rp[CredentialManagement.RESULT.RP_ID_HASH])
    check(len(creds) == count, "%s: every credential enumerated with the persistent token" % name)
    cred_id = creds[0][CredentialManagement.RESULT.CREDENTIAL_ID]
    # CTAP 2.2 section 6.8.5 / 6.8.6 step 2: the token needs the cm
    # permission; the pcmr token does not have it.
    expect_error(CtapError.ERR.PIN_AUTH_INVALID, lambda: cm.delete_cred(cred_id),
                 "%s: deleteCredential with the persistent token is CTAP2_ERR_PIN_AUTH_INVALID" % name)
    expect_error(CtapError.ERR.PIN_AUTH_INVALID,
                 lambda: cm.update_user_info(cred_id, {"id": b"x", "name": "x"}),
                 "%s: updateUserInformation with the persistent token is CTAP2_ERR_PIN_AUTH_INVALID" % name)
    check(cm.get_metadata()[CredentialManagement.RESULT.EXISTING_CRED_COUNT] == count,
          "%s: nothing deleted" % name)

    # encIdentifier (getInfo 0x1B): under HKDF(token, "encIdentifier"),
    # a fresh IV each time, the same identifier behind it.
    a, b = ctap.get_info(), ctap.get_info()
    check(a.enc_identifier is not None and len(a.enc_identifier) == 32, "%s: encIdentifier in getInfo" % name)
    check(a.enc_identifier != b.enc_identifier, "%s: encIdentifier has a fresh IV on every getInfo" % name)
    ident = a.get_identifier(token)
    check(len(ident) == 16 and ident == b.get_identifier(token),
          "%s: encIdentifier decrypts (Info.get_identifier) to the same 16-byte identifier" % name)
    check(a.get_identifier(os.urandom(32)) != ident, "%s: another token does not decrypt it" % name)
    return token, ident


def persistent_tokens(dev):
    ctap = Ctap2(dev)
    tok1, id1 = persistent_token(dev, PinProtocolV1)
    tok2, id2 = persistent_token(dev, PinProtocolV2)
    check(id1 == id2, "the identifier is the key's, whichever persistent token decrypts it")
    expect_error(CtapError.ERR.PIN_AUTH_INVALID,
                 lambda: CredentialManagement(ctap, PinProtocolV1(), tok1).get_metadata(),
                 "a new persistent token replaces the old one")
    # A PIN change ends the persistent token (section 6.5.5.7).
    ClientPin(ctap, PinProtocolV2()).change_pin(PIN, "5678")
    expect_error(CtapError.ERR.PIN_AUTH_INVALID,
                 lambda: CredentialManagement(ctap, PinProtocolV2(), tok2).get_metadata(),
                 "after changePIN the persistent token is CTAP2_ERR_PIN_AUTH_INVALID")
    check(ctap.get_info().enc_identifier is None, "after changePIN no encIdentifier")
    ClientPin(ctap, PinProtocolV2()).change_pin("5678", PIN)


def third_party_payment(dev):
    """thirdPartyPayment at create and get, and in credential management."""
    origin = "https://pay.example.com"
    client = Fido2Client(dev, PaymentClientDataCollector(origin), PinInteraction(),
                         extensions=[*_DEFAULT_EXTENSIONS, ThirdPartyPaymentExtension()])
    server = Fido2Server({"id": "pay.example.com", "name": "Pay"}, attestation="none",
                         verify_origin=lambda o: o == origin)
    creds = {}
    for pay in (True, False):
        options, state = server.register_begin(
            {"id": b"payer" + bytes([pay]), "name": "payer"}, resident_key_requirement="required",
            user_verification="required", authenticator_attachment="cross-platform")
        ext = {"payment": {"isPayment": True}} if pay else {}
        result = client.make_credential({**options["publicKey"], "extensions": ext})
        auth = server.register_complete(state, result)
        creds[pay] = auth.credential_data
    payment = {"isPayment": True, "rpId": "pay.example.com", "topOrigin": "https://shop.example",
               "payeeName": "Shop", "payeeOrigin": "https://shop.example",
               "total": {"currency": "EUR", "value": "1.00"},
               "instrument": {"displayName": "Card", "icon": "https://pay.example.com/card.png"}}
    for pay in (True, False):
        cred = creds[pay]
        for ask in (True, False):
            options, _ = server.authenticate_begin([cred], user_verification="required")
            sel = client.get_assertion({**options["publicKey"], "extensions": {"payment": payment} if ask else {}})
            resp = sel.get_response(0)
            ad = resp.response.authenticator_data
            cd = resp.response.client_data
            check(cd.type == ("payment.get" if ask else "webauthn.get"), "client data type %s" % cd.type)
            cred.public_key.verify(ad + cd.hash, resp.response.signature)
            got = (ad.extensions or {}).get("thirdPartyPayment")
            check(got == (pay if ask else None),
                  "payment credential %s, asked %s: thirdPartyPayment output %r" % (pay, ask, got))
    ctap = Ctap2(dev)
    token = ClientPin(ctap, PinProtocolV2()).get_pin_token(PIN, ClientPin.PERMISSION.CREDENTIAL_MGMT)
    cm = CredentialManagement(ctap, PinProtocolV2(), token)
    listed = cm.enumerate_creds(sha256(b"pay.example.com"))
    flags = {c[CredentialManagement.RESULT.CREDENTIAL_ID]["id"]: c.get(CredentialManagement.RESULT.THIRD_PARTY_PAYMENT)
             for c in listed}
    for pay in (True, False):
        check(flags.get(creds[pay].credential_id) is pay,
              "credential management thirdPartyPayment (0x0C) is %s" % pay)


def main():
    dev = vkeyudp.open_device()
    rec = Recorder()
    ctap = Ctap2(dev)
    check(ctap.info.options.get("clientPin") is False, "fresh key")
    get_info(ctap)
    attestation_formats_preference(ctap)
    ClientPin(ctap, PinProtocolV1()).set_pin(PIN)
    check(Ctap2(dev).get_info().options.get("clientPin") is True, "setPIN")
    for proto in (PinProtocolV1, PinProtocolV2):
        prf(dev, rec, proto)
    hmac_secret_mc_errors(ctap)
    third_party_payment(dev)
    persistent_tokens(dev)


if __name__ == "__main__":
    vkeyudp.run(main)
