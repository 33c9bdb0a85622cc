"""A WebAuthn registration and authentication through python-fido2 0.9.1.

Fido2Client (the platform) drives the key over UDP; Fido2Server (the relying
party) checks what comes back, and the packed attestation statement is
verified with python-fido2's own attestation code. Run with /usr/bin/python3
(Debian's python3-fido2). Exits non-zero, with the reason, on any failure.
"""


from fido2.attestation import Attestation
from fido2.client import Fido2Client
from fido2.server import Fido2Server

import vkeyudp
from vkeyudp import check

ORIGIN = "https://example.com"
RP = {"id": "example.com", "name": "Example RP"}
USER = {"id": b"user-0001", "name": "alice", "displayName": "Alice"}


def register(client, server, resident):
    options, state = server.register_begin(
        USER, resident_key=resident, user_verification="discouraged"
    )
    result = client.make_credential(options["publicKey"])
    auth_data = server.register_complete(
        state, result.client_data, result.attestation_object
    )
    att = result.attestation_object
    # The relying party's own verification of the attestation statement.
    Attestation.for_type(att.fmt)().verify(
        att.att_statement, att.auth_data, result.client_data.hash
    )
    check(auth_data.is_user_present(), "UP flag set on registration")
    print("registered fmt=%s resident=%s alg=%s" % (
        att.fmt, resident, auth_data.credential_data.public_key[3]))
    return auth_data.credential_data


def authenticate(client, server, creds, discoverable):
    options, state = server.authenticate_begin(
        None if discoverable else creds, user_verification="discouraged"
    )
    selection = client.get_assertion(options["publicKey"])
    response = selection.get_response(0)
    server.authenticate_complete(
        state,
        creds,
        response.credential_id,
        response.client_data,
        response.authenticator_data,
        response.signature,
    )
    counter = response.authenticator_data.counter
    check(response.authenticator_data.is_user_present(), "UP flag set on assertion")
    print("authenticated counter=%d discoverable=%s" % (counter, discoverable))
    return counter


def main():
    dev = vkeyudp.open_device()
    client = Fido2Client(dev, ORIGIN)
    check("FIDO_2_1" in client.info.versions, "getInfo advertises FIDO_2_1")
    server = Fido2Server(RP, attestation="direct")

    cred = register(client, server, resident=False)
    c1 = authenticate(client, server, [cred], discoverable=False)
    c2 = authenticate(client, server, [cred], discoverable=False)
    check(c2 > c1, "signature counter increases (%d then %d)" % (c1, c2))

    rk = register(client, server, resident=True)
    authenticate(client, server, [rk], discoverable=True)
    dev.close()
    print("OK")


if __name__ == "__main__":
    vkeyudp.run(main)
