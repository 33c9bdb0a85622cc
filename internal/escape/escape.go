// Package escape makes text that comes from a request (an RP ID, a user
// name) safe to print on a terminal or in a log line: a relying party must
// not be able to move the cursor, rewrite a prompt or hide text with
// control characters, bidirectional overrides or invalid UTF-8.
package escape

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Terminal returns s with every rune that is not printable (control
// characters including tab and newline, format characters such as U+202E,
// invalid UTF-8) written as a Go escape (\x1b, \u202e), and a backslash
// doubled so that an escape cannot be forged. Printable text, spaces and
// letters of every script included, is unchanged.
func Terminal(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// clean reports whether s needs no escaping.
func clean(s string) bool {
	for _, r := range s {
		if r == '\\' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
