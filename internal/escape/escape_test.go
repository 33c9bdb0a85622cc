package escape

import "testing"

func TestTerminal(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":                      "example.com",
		"Zoë Ünïcødé 名前":                   "Zoë Ünïcødé 名前",
		"evil\r\x1b[2Kaccounts.google.com": `evil\x0d\x1b[2Kaccounts.google.com`,
		"a\tb\nc":                          `a\x09b\x0ac`,
		"\u202egoogle":                     `\u202egoogle`,
		"bad\xffutf8":                      `bad\xffutf8`,
		`forged\x1b`:                       `forged\\x1b`,
		"\U000e0041tag":                    `\U000e0041tag`,
	} {
		if got := Terminal(in); got != want {
			t.Errorf("Terminal(%q) = %q, want %q", in, got, want)
		}
	}
}
