package ctap2

import "fmt"

// Status is a CTAP status code (CTAP 2.1 section 8.2).
type Status byte

// Status codes, named as in CTAP 2.1 section 8.2.
const (
	StatusOK                  Status = 0x00 // CTAP2_OK / CTAP1_ERR_SUCCESS
	ErrInvalidCommand         Status = 0x01 // CTAP1_ERR_INVALID_COMMAND
	ErrInvalidParameter       Status = 0x02 // CTAP1_ERR_INVALID_PARAMETER
	ErrInvalidLength          Status = 0x03 // CTAP1_ERR_INVALID_LENGTH
	ErrInvalidSeq             Status = 0x04 // CTAP1_ERR_INVALID_SEQ
	ErrTimeout                Status = 0x05 // CTAP1_ERR_TIMEOUT
	ErrChannelBusy            Status = 0x06 // CTAP1_ERR_CHANNEL_BUSY
	ErrLockRequired           Status = 0x0A // CTAP1_ERR_LOCK_REQUIRED
	ErrInvalidChannel         Status = 0x0B // CTAP1_ERR_INVALID_CHANNEL
	ErrCBORUnexpectedType     Status = 0x11 // CTAP2_ERR_CBOR_UNEXPECTED_TYPE
	ErrInvalidCBOR            Status = 0x12 // CTAP2_ERR_INVALID_CBOR
	ErrMissingParameter       Status = 0x14 // CTAP2_ERR_MISSING_PARAMETER
	ErrLimitExceeded          Status = 0x15 // CTAP2_ERR_LIMIT_EXCEEDED
	ErrFPDatabaseFull         Status = 0x17 // CTAP2_ERR_FP_DATABASE_FULL
	ErrLargeBlobStorageFull   Status = 0x18 // CTAP2_ERR_LARGE_BLOB_STORAGE_FULL
	ErrCredentialExcluded     Status = 0x19 // CTAP2_ERR_CREDENTIAL_EXCLUDED
	ErrProcessing             Status = 0x21 // CTAP2_ERR_PROCESSING
	ErrInvalidCredential      Status = 0x22 // CTAP2_ERR_INVALID_CREDENTIAL
	ErrUserActionPending      Status = 0x23 // CTAP2_ERR_USER_ACTION_PENDING
	ErrOperationPending       Status = 0x24 // CTAP2_ERR_OPERATION_PENDING
	ErrNoOperations           Status = 0x25 // CTAP2_ERR_NO_OPERATIONS
	ErrUnsupportedAlgorithm   Status = 0x26 // CTAP2_ERR_UNSUPPORTED_ALGORITHM
	ErrOperationDenied        Status = 0x27 // CTAP2_ERR_OPERATION_DENIED
	ErrKeyStoreFull           Status = 0x28 // CTAP2_ERR_KEY_STORE_FULL
	ErrUnsupportedOption      Status = 0x2B // CTAP2_ERR_UNSUPPORTED_OPTION
	ErrInvalidOption          Status = 0x2C // CTAP2_ERR_INVALID_OPTION
	ErrKeepaliveCancel        Status = 0x2D // CTAP2_ERR_KEEPALIVE_CANCEL
	ErrNoCredentials          Status = 0x2E // CTAP2_ERR_NO_CREDENTIALS
	ErrUserActionTimeout      Status = 0x2F // CTAP2_ERR_USER_ACTION_TIMEOUT
	ErrNotAllowed             Status = 0x30 // CTAP2_ERR_NOT_ALLOWED
	ErrPINInvalid             Status = 0x31 // CTAP2_ERR_PIN_INVALID
	ErrPINBlocked             Status = 0x32 // CTAP2_ERR_PIN_BLOCKED
	ErrPINAuthInvalid         Status = 0x33 // CTAP2_ERR_PIN_AUTH_INVALID
	ErrPINAuthBlocked         Status = 0x34 // CTAP2_ERR_PIN_AUTH_BLOCKED
	ErrPINNotSet              Status = 0x35 // CTAP2_ERR_PIN_NOT_SET
	ErrPUATRequired           Status = 0x36 // CTAP2_ERR_PUAT_REQUIRED
	ErrPINPolicyViolation     Status = 0x37 // CTAP2_ERR_PIN_POLICY_VIOLATION
	ErrRequestTooLarge        Status = 0x39 // CTAP2_ERR_REQUEST_TOO_LARGE
	ErrActionTimeout          Status = 0x3A // CTAP2_ERR_ACTION_TIMEOUT
	ErrUPRequired             Status = 0x3B // CTAP2_ERR_UP_REQUIRED
	ErrUVBlocked              Status = 0x3C // CTAP2_ERR_UV_BLOCKED
	ErrIntegrityFailure       Status = 0x3D // CTAP2_ERR_INTEGRITY_FAILURE
	ErrInvalidSubcommand      Status = 0x3E // CTAP2_ERR_INVALID_SUBCOMMAND
	ErrUVInvalid              Status = 0x3F // CTAP2_ERR_UV_INVALID
	ErrUnauthorizedPermission Status = 0x40 // CTAP2_ERR_UNAUTHORIZED_PERMISSION
	ErrOther                  Status = 0x7F // CTAP1_ERR_OTHER
)

var statusNames = map[Status]string{
	StatusOK: "CTAP2_OK", ErrInvalidCommand: "CTAP1_ERR_INVALID_COMMAND",
	ErrInvalidParameter: "CTAP1_ERR_INVALID_PARAMETER", ErrInvalidLength: "CTAP1_ERR_INVALID_LENGTH",
	ErrInvalidSeq: "CTAP1_ERR_INVALID_SEQ", ErrTimeout: "CTAP1_ERR_TIMEOUT",
	ErrChannelBusy: "CTAP1_ERR_CHANNEL_BUSY", ErrLockRequired: "CTAP1_ERR_LOCK_REQUIRED",
	ErrInvalidChannel: "CTAP1_ERR_INVALID_CHANNEL", ErrCBORUnexpectedType: "CTAP2_ERR_CBOR_UNEXPECTED_TYPE",
	ErrInvalidCBOR: "CTAP2_ERR_INVALID_CBOR", ErrMissingParameter: "CTAP2_ERR_MISSING_PARAMETER",
	ErrLimitExceeded: "CTAP2_ERR_LIMIT_EXCEEDED", ErrFPDatabaseFull: "CTAP2_ERR_FP_DATABASE_FULL",
	ErrLargeBlobStorageFull: "CTAP2_ERR_LARGE_BLOB_STORAGE_FULL", ErrCredentialExcluded: "CTAP2_ERR_CREDENTIAL_EXCLUDED",
	ErrProcessing: "CTAP2_ERR_PROCESSING", ErrInvalidCredential: "CTAP2_ERR_INVALID_CREDENTIAL",
	ErrUserActionPending: "CTAP2_ERR_USER_ACTION_PENDING", ErrOperationPending: "CTAP2_ERR_OPERATION_PENDING",
	ErrNoOperations: "CTAP2_ERR_NO_OPERATIONS", ErrUnsupportedAlgorithm: "CTAP2_ERR_UNSUPPORTED_ALGORITHM",
	ErrOperationDenied: "CTAP2_ERR_OPERATION_DENIED", ErrKeyStoreFull: "CTAP2_ERR_KEY_STORE_FULL",
	ErrUnsupportedOption: "CTAP2_ERR_UNSUPPORTED_OPTION", ErrInvalidOption: "CTAP2_ERR_INVALID_OPTION",
	ErrKeepaliveCancel: "CTAP2_ERR_KEEPALIVE_CANCEL", ErrNoCredentials: "CTAP2_ERR_NO_CREDENTIALS",
	ErrUserActionTimeout: "CTAP2_ERR_USER_ACTION_TIMEOUT", ErrNotAllowed: "CTAP2_ERR_NOT_ALLOWED",
	ErrPINInvalid: "CTAP2_ERR_PIN_INVALID", ErrPINBlocked: "CTAP2_ERR_PIN_BLOCKED",
	ErrPINAuthInvalid: "CTAP2_ERR_PIN_AUTH_INVALID", ErrPINAuthBlocked: "CTAP2_ERR_PIN_AUTH_BLOCKED",
	ErrPINNotSet: "CTAP2_ERR_PIN_NOT_SET", ErrPUATRequired: "CTAP2_ERR_PUAT_REQUIRED",
	ErrPINPolicyViolation: "CTAP2_ERR_PIN_POLICY_VIOLATION", ErrRequestTooLarge: "CTAP2_ERR_REQUEST_TOO_LARGE",
	ErrActionTimeout: "CTAP2_ERR_ACTION_TIMEOUT", ErrUPRequired: "CTAP2_ERR_UP_REQUIRED",
	ErrUVBlocked: "CTAP2_ERR_UV_BLOCKED", ErrIntegrityFailure: "CTAP2_ERR_INTEGRITY_FAILURE",
	ErrInvalidSubcommand: "CTAP2_ERR_INVALID_SUBCOMMAND", ErrUVInvalid: "CTAP2_ERR_UV_INVALID",
	ErrUnauthorizedPermission: "CTAP2_ERR_UNAUTHORIZED_PERMISSION", ErrOther: "CTAP1_ERR_OTHER",
}

// String returns the spec's name for the status.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("CTAP status 0x%02X", byte(s))
}

// Error makes a Status usable as an error.
func (s Status) Error() string { return s.String() }
