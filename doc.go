// Package vkey assembles a running virtual FIDO2 security key: a store (a
// state folder or memory), a master key, TPM or software keys, a presence
// broker, the ctap2 authenticator, a CTAPHID transport (uhid, pty, udp or an
// in-process pipe) and the control API. It is what `vkey run` runs; a Go
// program builds the same key with New.
//
// The zero Options make an ephemeral in-memory key that approves every
// presence request, served on an in-process pipe.
package vkey
