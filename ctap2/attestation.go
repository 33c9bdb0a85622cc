package ctap2

// ensureIdentity creates the installation identity (credential-ID wrapping
// key, attestation CA and leaf) on first use. TODO(issue 2).
func (a *Authenticator) ensureIdentity() error { return nil }
