// Package browsertest proves vkey with the browsers people use: in a qemu
// guest running Debian's kernel (internal/vmtest) with the host's own
// Chromium and Firefox ESR, a local page on http://localhost registers and
// signs in with navigator.credentials, checks the results itself (ES256
// signature with WebCrypto, rpIdHash, challenge, flags, PRF) and reports
// each step to a small local server; the test reads the reports. It runs
// with VKEY_VM=1 (make vmtest), one guest boot for all cases.
package browsertest
