package ctap2

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/vkey-dev/vkey/keystore"
)

// Profile is the observable shape of a hardware key that vkey stands in
// for (`vkey run --profile NAME`): what its getInfo says and the limits
// it enforces. vkey's own AAGUID and attestation stay unless configured
// otherwise; behaviour a getInfo does not describe stays vkey's.
type Profile struct {
	// Name is what --profile takes; Description names the key and
	// firmware; Source says where the figures come from.
	Name, Description, Source string
	// Versions, Extensions and Transports are getInfo's lists.
	Versions, Extensions, Transports []string
	// Options are the getInfo options the key lists; the values of
	// clientPin, alwaysUv and ep follow vkey's state, the rest are vkey's.
	Options []string
	// Algorithms are the credential algorithms, in the key's order.
	Algorithms []keystore.Algorithm
	// MaxMsgSize, MaxCredentialCountInList and MaxCredentialIDLength are
	// getInfo's limits; MaxMsgSize is enforced by CTAPHID (a longer
	// message is CTAP1_ERR_INVALID_LENGTH).
	MaxMsgSize, MaxCredentialCountInList, MaxCredentialIDLength int
	// Discoverable is how many discoverable credentials fit: one more is
	// CTAP2_ERR_KEY_STORE_FULL (CTAP 2.1 section 6.1.2 step 17).
	Discoverable int
	// RemainingInGetInfo says whether getInfo reports
	// remainingDiscoverableCredentials (0x14, CTAP 2.1 keys).
	RemainingInGetInfo bool
	// FirmwareVersion is getInfo's firmwareVersion (0 for none).
	FirmwareVersion uint64
	// PINProtocols are getInfo's pinUvAuthProtocols (nil: vkey's 2, 1).
	// clientPIN and hmac-secret refuse another protocol with
	// CTAP1_ERR_INVALID_PARAMETER (CTAP 2.1 section 6.5.5).
	PINProtocols []uint64
	// OmitAlgorithms leaves algorithms (0x0A) out of getInfo, for a key
	// that does not report them; Algorithms still choose what it makes.
	OmitAlgorithms bool
	// LargeBlobArray is the key's maxSerializedLargeBlobArray (0: vkey's
	// 4096). A set of a longer array is CTAP2_ERR_LARGE_BLOB_STORAGE_FULL
	// (CTAP 2.1 section 6.10.2).
	LargeBlobArray int
	// RPIDsForSetMinPINLength is the key's maxRPIDsForSetMinPINLength (0:
	// vkey's 8). setMinPINLength with more RP IDs is
	// CTAP2_ERR_PIN_POLICY_VIOLATION, as vkey answers past its own limit;
	// the vendors do not publish their keys' status for it.
	RPIDsForSetMinPINLength int
}

// builtinProfiles are the keys `vkey run --profile` can stand in for,
// built anew on each call so that no caller can change what the next one
// finds (LookupProfile).
func builtinProfiles() []Profile {
	return []Profile{
		{
			Name:        "yubikey5-fw5.4",
			Description: "YubiKey 5 NFC, firmware 5.4.3 (CTAP 2.0 with the 2.1 preview)",
			// getInfo as `fido2-token -I` printed it in libfido2 issue 686
			// (github.com/Yubico/libfido2/issues/686); 25 discoverable
			// credentials as Yubico documents for firmware 5.0-5.6 and as
			// solokeys/solo1 issue 156 quotes.
			Source:     "https://github.com/Yubico/libfido2/issues/686 (fido2-token -I); 25 discoverable credentials: Yubico's YubiKey 5 specifications, https://github.com/solokeys/solo1/issues/156",
			Versions:   []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE"},
			Extensions: []string{"credProtect", "hmac-secret"},
			Transports: []string{"nfc", "usb"},
			Options:    []string{"rk", "up", "plat", "clientPin", "credentialMgmtPreview"},
			Algorithms: []keystore.Algorithm{keystore.AlgES256, keystore.AlgEdDSA},
			MaxMsgSize: 1200, MaxCredentialCountInList: 8, MaxCredentialIDLength: 128,
			Discoverable: 25, FirmwareVersion: 0x50403,
		},
		{
			Name:        "yubikey5-fw5.7",
			Description: "YubiKey 5 Series, firmware 5.7.1 (CTAP 2.1)",
			// getInfo as Yubico's .NET SDK printed it in virot/powershellYK
			// Docs/Commands/Get-YubikeyFIDO2.md ("Yubikey 5.7 FIDO2
			// capabilities", firmwareVersion 329473 = 5.7.1): maxMsgSize 1280,
			// PIN protocols 2 and 1, 8 IDs of 128 bytes per list, nfc and usb,
			// ES256, EdDSA and ES384, a 4096-byte large-blob store, credBlob
			// of 32 bytes, 1 RP ID for setMinPINLength and
			// remainingDiscoverableCredentials 100 on an empty key, which the
			// profile takes as its capacity. That print cuts the extension
			// and option lists short: it shows credProtect, hmac-secret,
			// largeBlobKey and credBlob, and options rk, up, plat and alwaysUv
			// in the key's (canonical CBOR) order, so no ep or uv before them.
			// minPinLength and the options after alwaysUv are ASSUMED from
			// Yubico's YubiKey Technical Manual, "5.7 Firmware Specifics"
			// (minimum PIN length extension, credential management,
			// authenticator config, blob storage, setMinPINLength); options a
			// 2.1 key must list with those features (pinUvAuthToken, the
			// preview credential management of FIDO_2_1_PRE) are included,
			// makeCredUvNotRqd is not, for want of a source.
			Source:     "https://github.com/virot/powershellYK/blob/main/Docs/Commands/Get-YubikeyFIDO2.md (getInfo of a 5.7.1 key); minPinLength and the options after alwaysUv: https://docs.yubico.com/hardware/yubikey/yk-tech-manual/5.7-firmware-specifics.html",
			Versions:   []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1"},
			Extensions: []string{"credProtect", "hmac-secret", "largeBlobKey", "credBlob", "minPinLength"},
			Transports: []string{"nfc", "usb"},
			Options: []string{"rk", "up", "plat", "alwaysUv", "credMgmt", "authnrCfg", "clientPin", "largeBlobs",
				"pinUvAuthToken", "setMinPINLength", "credentialMgmtPreview"},
			Algorithms: []keystore.Algorithm{keystore.AlgES256, keystore.AlgEdDSA, keystore.AlgES384},
			MaxMsgSize: 1280, MaxCredentialCountInList: 8, MaxCredentialIDLength: 128,
			Discoverable: 100, RemainingInGetInfo: true, FirmwareVersion: 0x50701,
			RPIDsForSetMinPINLength: 1,
		},
		{
			Name:        "nitrokey3",
			Description: "Nitrokey 3 (NK3), firmware 1.7-1.8 (CTAP 2.1)",
			// getInfo as `nitropy fido2 get-info` printed it in
			// Nitrokey/pynitrokey pull request 545 (May 2024): no algorithms
			// field, largeBlobs false (vkey cannot report largeBlobs false
			// while it keeps large blobs, so the option is left out, which
			// means the same to a platform: no large blobs; CTAP 2.1
			// section 6.4). Credentials are ES256 or EdDSA (fido-authenticator's
			// SigningAlgorithm: P256, Ed25519). 10 discoverable credentials up
			// to firmware 1.8.1: Nitrokey/nitrokey-3-firmware pull request 602
			// (the table's v1.8.1 row) and Nitrokey/nitrokey-documentation
			// pull request 399; a full store answers CTAP2_ERR_KEY_STORE_FULL
			// (fido-authenticator src/ctap2.rs, makeCredential step 12).
			Source:     "https://github.com/Nitrokey/pynitrokey/pull/545 (get-info); https://github.com/Nitrokey/fido-authenticator src/ctap2.rs (algorithms, KEY_STORE_FULL); 10 discoverable: https://github.com/Nitrokey/nitrokey-3-firmware/pull/602, https://github.com/Nitrokey/nitrokey-documentation/pull/399",
			Versions:   []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
			Extensions: []string{"credProtect", "hmac-secret"},
			Transports: []string{"nfc", "usb"},
			Options:    []string{"rk", "up", "plat", "credMgmt", "clientPin", "pinUvAuthToken"},
			Algorithms: []keystore.Algorithm{keystore.AlgES256, keystore.AlgEdDSA},
			MaxMsgSize: 3072, MaxCredentialCountInList: 10, MaxCredentialIDLength: 255,
			Discoverable: 10, OmitAlgorithms: true,
		},
		{
			Name:        "feitian-epass-fido",
			Description: "Feitian ePass FIDO-NFC (096e:0853, CTAP 2.0 with the 2.1 preview)",
			// getInfo as python-fido2 printed it in bibi21000/PyCoffer
			// docs/dev/adaptaters.rst ("FS ePass FIDO (096e:0853)"): ES256
			// only, PIN protocol 1 only, no firmwareVersion and no
			// remainingDiscoverableCredentials. Feitian publishes no number
			// of discoverable credentials for it, so the profile sets none
			// and vkey's store limit (vkey run --max-credentials) applies.
			Source:     "https://github.com/bibi21000/PyCoffer/blob/main/docs/dev/adaptaters.rst (python-fido2 getInfo)",
			Versions:   []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE"},
			Extensions: []string{"credProtect", "hmac-secret"},
			Transports: []string{"nfc", "usb"},
			Options:    []string{"rk", "up", "plat", "clientPin", "credentialMgmtPreview"},
			Algorithms: []keystore.Algorithm{keystore.AlgES256},
			MaxMsgSize: 1024, MaxCredentialCountInList: 6, MaxCredentialIDLength: 96,
			PINProtocols: []uint64{1},
		},
		{
			Name:        "google-titan-v2",
			Description: "Google Titan Security Key v2 (AAGUID 42b4fb4a-2866-43b2-9bf7-6c6669c2e5d3, CTAP 2.0)",
			// The authenticatorGetInfo of the key's FIDO Metadata Service
			// statement (MDS3 BLOB no. 64, FIDO certificate
			// FIDO20020230612002), as quoted in jpassing/jpki-net
			// sources/Jpki.Powershell.Test/Security/WebAuthn/Metadata/MdsSampleData.cs:
			// versions FIDO_2_0 and U2F_V2 in that order, credProtect and
			// hmac-secret, options rk and clientPin only, maxMsgSize 2200, PIN
			// protocol 1 only, and no algorithms, transports, list or ID
			// limits. The statement's authenticationAlgorithms name only
			// secp256r1_ecdsa_sha256_raw, so credentials are ES256. Google
			// publishes no number of discoverable credentials in that
			// statement, so the profile sets none and vkey's store limit
			// applies.
			Source:       "FIDO MDS3 statement for AAGUID 42b4fb4a-2866-43b2-9bf7-6c6669c2e5d3, quoted in https://github.com/jpassing/jpki-net sources/Jpki.Powershell.Test/Security/WebAuthn/Metadata/MdsSampleData.cs",
			Versions:     []string{"FIDO_2_0", "U2F_V2"},
			Extensions:   []string{"credProtect", "hmac-secret"},
			Options:      []string{"rk", "clientPin"},
			Algorithms:   []keystore.Algorithm{keystore.AlgES256},
			MaxMsgSize:   2200,
			PINProtocols: []uint64{1}, OmitAlgorithms: true,
		},
		{
			Name:        "excelsecu-fido2",
			Description: "ExcelSecu FIDO2 Security Key, USB 1ea8:fc25, firmware 256 (CTAP 2.1); Token2's FIDO2 key reports the same USB IDs",
			// getInfo as python-fido2 printed it in bibi21000/PyCoffer
			// docs/dev/adaptaters.rst ("ExcelSecu FIDO2 Security Key
			// (1ea8:fc25)", firmware 256), including
			// remainingDiscoverableCredentials 50 on an empty key, which the
			// profile takes as its capacity. google/CTAP2-test-tool's
			// results/summaries/"FIDO2 Security Key_.md", for a key whose
			// manufacturer string is TOKEN2, shows the same USB IDs 1ea8:fc25
			// (AAGUID ab32f0c6-2239-afbb-c470-d2ef4e254db7, an older CTAP 2.0
			// firmware with hmac-secret only). The key's certifications {FIDO: 1} are
			// not reported: vkey is not certified.
			Source:     "https://github.com/bibi21000/PyCoffer/blob/main/docs/dev/adaptaters.rst (python-fido2 getInfo, 1ea8:fc25); Token2 USB IDs: https://github.com/google/CTAP2-test-tool/blob/main/results/summaries/FIDO2%20Security%20Key_.md (manufacturer TOKEN2, 0x1ea8:0xfc25)",
			Versions:   []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1", "FIDO_2_1_PRE"},
			Extensions: []string{"credBlob", "credProtect", "hmac-secret", "largeBlobKey", "minPinLength"},
			Transports: []string{"usb", "nfc", "ble"},
			Options: []string{"rk", "up", "plat", "alwaysUv", "credMgmt", "authnrCfg", "clientPin", "largeBlobs",
				"pinUvAuthToken", "setMinPINLength", "makeCredUvNotRqd", "credentialMgmtPreview"},
			Algorithms: []keystore.Algorithm{keystore.AlgES256, keystore.AlgEdDSA},
			MaxMsgSize: 2048, MaxCredentialCountInList: 8, MaxCredentialIDLength: 96,
			Discoverable: 50, RemainingInGetInfo: true, FirmwareVersion: 256,
			LargeBlobArray: 2048, RPIDsForSetMinPINLength: 6,
		},
	}
}

// LookupProfile finds the profile named name (what --profile takes). The
// profile is the caller's own: changing it, its slices included, changes
// no other lookup's.
func LookupProfile(name string) (Profile, bool) {
	for _, p := range builtinProfiles() {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// ProfileNames lists the profiles' names, sorted.
func ProfileNames() []string {
	var out []string
	for _, p := range builtinProfiles() {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// clone is a deep copy of p, so that an Authenticator does not share the
// profile's slices with the caller of New.
func (p *Profile) clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	c.Versions, c.Extensions, c.Transports = slices.Clone(p.Versions), slices.Clone(p.Extensions), slices.Clone(p.Transports)
	c.Options, c.Algorithms, c.PINProtocols = slices.Clone(p.Options), slices.Clone(p.Algorithms), slices.Clone(p.PINProtocols)
	return &c
}

// applyProfile fills opts from its profile where the caller left a
// default.
func applyProfile(opts *Options) {
	p := opts.Profile
	if p == nil {
		return
	}
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = p.Algorithms
	}
	if opts.MaxMsgSize <= 0 {
		opts.MaxMsgSize = p.MaxMsgSize
	}
	if opts.FirmwareVersion == 0 {
		opts.FirmwareVersion = p.FirmwareVersion
	}
}

// shapeInfo makes info what the profile's key reports.
func (a *Authenticator) shapeInfo(info *GetInfoResponse) {
	p := a.opts.Profile
	if p == nil {
		return
	}
	// Copies: Info's caller may change what it gets.
	info.Versions, info.Extensions, info.Transports = slices.Clone(p.Versions), slices.Clone(p.Extensions), slices.Clone(p.Transports)
	for name := range info.Options {
		if !slices.Contains(p.Options, name) {
			delete(info.Options, name)
		}
	}
	info.MaxCredentialCountInList, info.MaxCredentialIDLength = uint64(p.MaxCredentialCountInList), uint64(p.MaxCredentialIDLength)
	if !slices.Contains(p.Options, "largeBlobs") {
		info.MaxSerializedLargeBlobArray = 0
	}
	if !slices.Contains(p.Extensions, "credBlob") {
		info.MaxCredBlobLength = 0
	}
	if !slices.Contains(p.Options, "setMinPINLength") {
		info.MaxRPIDsForSetMinPINLength = 0
	}
	if info.MaxSerializedLargeBlobArray != 0 {
		info.MaxSerializedLargeBlobArray = uint64(a.maxLargeBlobArray())
	}
	if info.MaxRPIDsForSetMinPINLength != 0 {
		info.MaxRPIDsForSetMinPINLength = uint64(a.maxRPIDsForSetMinPINLength())
	}
	if !p.RemainingInGetInfo {
		info.RemainingDiscoverableCredentials = nil
	}
	info.AttestationFormats, info.MaxPINLength, info.EncIdentifier = nil, 0, nil // CTAP 2.2 fields
	if p.PINProtocols != nil {
		info.PinUvAuthProtocols = slices.Clone(p.PINProtocols)
	}
	if p.OmitAlgorithms {
		info.Algorithms = nil
	}
}

// advertisedExtensions is the filter of the extensions the key processes
// (MakeCredentialExtensions.only): a profile's key processes only those
// its getInfo lists and ignores the rest, as CTAP 2.1 section 12 has an
// authenticator do with extensions it does not support, with no output
// and no status even for a malformed value. Without a profile it is nil:
// vkey's getInfo lists every extension it implements
// (TestAdvertisedExtensions).
func (a *Authenticator) advertisedExtensions() func(name string) bool {
	p := a.opts.Profile
	if p == nil {
		return nil
	}
	return func(name string) bool { return slices.Contains(p.Extensions, name) }
}

// profileHasCommand says whether the profile's key has command cmd. A
// command that its getInfo does not announce is one the key lacks, so it
// answers CTAP1_ERR_INVALID_COMMAND, as for any command it does not know:
// credMgmt, credentialMgmtPreview, largeBlobs and authnrCfg absent mean
// no authenticatorCredentialManagement (and its preview), LargeBlobs or
// Config (CTAP 2.1 section 6.4); authenticatorSelection is a CTAP 2.1
// command, which platforms send only to a key listing FIDO_2_1.
func (a *Authenticator) profileHasCommand(cmd byte) bool {
	p := a.opts.Profile
	if p == nil {
		return true
	}
	switch cmd {
	case CmdCredentialManagement:
		return slices.Contains(p.Options, "credMgmt")
	case CmdCredentialMgmtPreview:
		return slices.Contains(p.Options, "credentialMgmtPreview") || slices.Contains(p.Options, "credMgmt")
	case CmdLargeBlobs:
		return slices.Contains(p.Options, "largeBlobs")
	case CmdConfig:
		return slices.Contains(p.Options, "authnrCfg")
	case CmdSelection:
		return slices.Contains(p.Versions, "FIDO_2_1")
	}
	return true
}

// profileHasPINSubcommand says whether the profile's key has clientPIN
// subcommand sub: without the pinUvAuthToken option it has neither
// getPinUvAuthTokenUsingPinWithPermissions nor ...UsingUvWithPermissions
// (CTAP 2.1 section 6.4, pinUvAuthToken), only the CTAP 2.0 getPinToken,
// and answers them CTAP2_ERR_INVALID_SUBCOMMAND.
func (a *Authenticator) profileHasPINSubcommand(sub uint64) bool {
	p := a.opts.Profile
	if p == nil || (sub != ClientPINGetTokenUsingPIN && sub != ClientPINGetTokenUsingUV) {
		return true
	}
	return slices.Contains(p.Options, "pinUvAuthToken")
}

// maxLargeBlobArray is maxSerializedLargeBlobArray: the profile's, or
// vkey's.
func (a *Authenticator) maxLargeBlobArray() int {
	if p := a.opts.Profile; p != nil && p.LargeBlobArray > 0 {
		return p.LargeBlobArray
	}
	return maxSerializedLargeBlobArray
}

// maxRPIDsForSetMinPINLength is maxRPIDsForSetMinPINLength: the
// profile's, or vkey's.
func (a *Authenticator) maxRPIDsForSetMinPINLength() int {
	if p := a.opts.Profile; p != nil && p.RPIDsForSetMinPINLength > 0 {
		return p.RPIDsForSetMinPINLength
	}
	return maxRPIDsForSetMinPINLength
}

// pinProtocol is PINProtocolFor limited to the profile's
// pinUvAuthProtocols: a key that has only protocol 1 answers a request
// for protocol 2 as for any protocol it lacks.
func (a *Authenticator) pinProtocol(v uint64) (PINProtocol, bool) {
	if p := a.opts.Profile; p != nil && p.PINProtocols != nil && !slices.Contains(p.PINProtocols, v) {
		return nil, false
	}
	return PINProtocolFor(v)
}

// remainingDiscoverable is how many more discoverable credentials fit:
// the store's room, capped by the profile's capacity. It is never
// negative: a state holding more than its limit has 0 left, not a count
// wrapped to 2^64 - k.
func (a *Authenticator) remainingDiscoverable() (int, error) {
	rem := max(a.store.RemainingDiscoverable(), 0)
	if p := a.opts.Profile; p != nil && p.Discoverable > 0 {
		n, err := a.store.DiscoverableCount()
		if err != nil {
			return 0, fmt.Errorf("counting credentials: %w", err)
		}
		rem = min(rem, max(0, p.Discoverable-n))
	}
	return rem, nil
}

// checkProfileCapacity refuses a new discoverable credential past the
// profile's capacity with CTAP2_ERR_KEY_STORE_FULL, what the key answers
// (CTAP 2.1 section 6.1.2 step 17); one that replaces a stored credential
// of the same RP and user takes no more room.
func (a *Authenticator) checkProfileCapacity(cred *keystore.Credential) error {
	p := a.opts.Profile
	if p == nil || p.Discoverable <= 0 {
		return nil
	}
	// The store's count less the credential this one would replace (same
	// RP and user, CTAP 2.1 section 6.1.2 step 17), read through the RP's
	// index, so the check costs the same at any number of credentials.
	n, err := a.store.DiscoverableCount()
	if err != nil {
		return fmt.Errorf("counting discoverable credentials: %w", err)
	}
	rpIDHash := sha256.Sum256([]byte(cred.RPID))
	same, err := a.store.DiscoverableCredentials(rpIDHash[:])
	if err != nil {
		return fmt.Errorf("listing the RP's credentials: %w", err)
	}
	for _, c := range same {
		if c.RPID == cred.RPID && bytes.Equal(c.UserID, cred.UserID) {
			n--
		}
	}
	if n >= p.Discoverable {
		return ErrKeyStoreFull
	}
	return nil
}
