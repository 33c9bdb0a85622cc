package ctap2

// The persistent pinUvAuthToken (CTAP 2.2, the pcmr permission and the
// perCredMgmtRO getInfo option): a token asked for with the pcmr
// permission alone, kept apart from the ordinary pinUvAuthToken, that a
// platform may keep and use for read-only credential management
// (getCredsMetadata, enumerateRPs, enumerateCredentials) without asking
// for the PIN again. A power cycle keeps it; a PIN change or
// authenticatorReset invalidates it. It never deletes or updates a
// credential, and the preview command (0x41) does not take it.

// PermPersistentCredMgmtRO is the pcmr permission (CTAP 2.2 section
// 6.5.5.7, permission 0x40).
const PermPersistentCredMgmtRO Permission = 0x40

// issuePersistentToken makes a new persistent token, replacing an earlier
// one but not the ordinary token, and returns it encrypted for the
// platform.
func (a *Authenticator) issuePersistentToken(proto PINProtocol, shared []byte) (any, error) {
	a.persistentToken = randomBytes(32)
	enc, err := proto.Encrypt(shared, a.persistentToken)
	if err != nil {
		return nil, err
	}
	return clientPINResponse{PinUvAuthToken: enc}, nil
}

// persistentTokenVerifies reports whether param authenticates message
// with the persistent token.
func (a *Authenticator) persistentTokenVerifies(protocol *uint64, param, message []byte) bool {
	if a.persistentToken == nil || protocol == nil || param == nil {
		return false
	}
	proto, ok := PINProtocolFor(*protocol)
	return ok && proto.Verify(a.persistentToken, message, param)
}

// readOnlyCredMgmt reports whether a credential management subcommand
// only reads, so that the persistent token may authorize it.
func readOnlyCredMgmt(sub uint64) bool {
	return sub == CredMgmtGetCredsMetadata || sub == CredMgmtEnumerateRPsBegin || sub == CredMgmtEnumerateCredentialsBegin
}
