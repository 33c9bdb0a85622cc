package ctap2

import "context"

// HandleMSG processes one CTAPHID_MSG message: a U2F/CTAP1 request APDU.
// It returns the response APDU (data followed by the status word).
// TODO(issue 4): U2F_REGISTER, U2F_AUTHENTICATE, U2F_VERSION.
func (a *Authenticator) HandleMSG(ctx context.Context, apdu []byte) []byte {
	return []byte{0x6D, 0x00} // SW_INS_NOT_SUPPORTED
}
