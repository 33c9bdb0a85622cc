package browser

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// A sign-in's options are parsed on the path `make bench` times, and
// encoding/json's reflection costs a fifth of a getAssertion there. This
// file reads the common shape of PublicKeyCredentialRequestOptionsJSON
// directly; anything it does not handle exactly as encoding/json would
// (escapes, nulls, keys that differ from a member only in case, numbers
// that are not plain digits, malformed JSON) makes it give up, and
// ParseRequestOptions uses encoding/json instead. A fuzz test checks that
// the two agree.

// jsonScanner walks JSON without escapes (the caller checked).
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips whitespace and reports the next byte (0 at the end).
func (s *jsonScanner) next() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) expect(c byte) bool {
	if s.next() != c {
		return false
	}
	s.i++
	return true
}

// str reads a string: valid UTF-8, no control characters.
func (s *jsonScanner) str() ([]byte, bool) {
	if !s.expect('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			v := s.b[start:s.i]
			s.i++
			return v, utf8.Valid(v)
		}
		if c < 0x20 {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// uint reads a number of plain digits.
func (s *jsonScanner) uint() (uint64, bool) {
	s.ws()
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		if v > (1<<63)/10 {
			return 0, false
		}
		v = v*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return v, true
}

// value skips any value but null, and returns its bytes.
func (s *jsonScanner) value() ([]byte, bool) {
	s.ws()
	start := s.i
	switch s.next() {
	case '"':
		_, ok := s.str()
		return s.b[start:s.i], ok
	case '{':
		ok := s.object(func([]byte) bool { _, ok := s.value(); return ok })
		return s.b[start:s.i], ok
	case '[':
		ok := s.array(func() bool { _, ok := s.value(); return ok })
		return s.b[start:s.i], ok
	case 't':
		return s.word("true")
	case 'f':
		return s.word("false")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		for s.i < len(s.b) && bytes.IndexByte([]byte("+-.0123456789eE"), s.b[s.i]) >= 0 {
			s.i++
		}
		var n json.Number
		if json.Unmarshal(s.b[start:s.i], &n) != nil {
			return nil, false
		}
		return s.b[start:s.i], true
	}
	return nil, false
}

func (s *jsonScanner) word(w string) ([]byte, bool) {
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return nil, false
	}
	s.i += len(w)
	return s.b[s.i-len(w) : s.i], true
}

// object reads {"key": value, ...}, calling member for each key with the
// scanner at its value.
func (s *jsonScanner) object(member func(key []byte) bool) bool {
	if !s.expect('{') {
		return false
	}
	if s.next() == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.expect(':') || !member(key) {
			return false
		}
		switch s.next() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array reads [value, ...], calling elem with the scanner at each value.
func (s *jsonScanner) array(elem func() bool) bool {
	if !s.expect('[') {
		return false
	}
	if s.next() == ']' {
		s.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch s.next() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// bytesValue reads a base64url string member.
func (s *jsonScanner) bytesValue(dst *Bytes) bool {
	v, ok := s.str()
	return ok && dst.UnmarshalText(v) == nil
}

func (s *jsonScanner) stringValue(dst *string) bool {
	v, ok := s.str()
	*dst = string(v)
	return ok
}

func (s *jsonScanner) stringsValue(dst *[]string) bool {
	out := []string{} // encoding/json makes [] an empty, not a nil, slice
	ok := s.array(func() bool {
		var v string
		ok := s.stringValue(&v)
		out = append(out, v)
		return ok
	})
	*dst = out
	return ok
}

// unknown skips a member this reader does not know, unless encoding/json
// would take it for one it knows (its keys match without case).
func (s *jsonScanner) unknown(key []byte, known ...string) bool {
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			return false
		}
	}
	_, ok := s.value()
	return ok
}

var requestMembers = []string{"publicKey", "challenge", "timeout", "rpId", "allowCredentials", "userVerification", "hints", "extensions"}

// parseRequestFast reads data as ParseRequestOptions does, or reports
// false when encoding/json must.
func parseRequestFast(data []byte) (*RequestOptions, bool) {
	if bytes.IndexByte(data, '\\') >= 0 {
		return nil, false
	}
	s := &jsonScanner{b: data}
	var outer, inner RequestOptions
	hasInner := false
	var members func(o *RequestOptions, top bool) func(key []byte) bool
	members = func(o *RequestOptions, top bool) func(key []byte) bool {
		return func(key []byte) bool {
			switch string(key) {
			case "publicKey":
				if !top || s.next() != '{' {
					return false
				}
				inner, hasInner = RequestOptions{}, true
				return s.object(members(&inner, false))
			case "challenge":
				return s.bytesValue(&o.Challenge)
			case "timeout":
				v, ok := s.uint()
				o.Timeout = v
				return ok
			case "rpId":
				return s.stringValue(&o.RPID)
			case "userVerification":
				return s.stringValue(&o.UserVerification)
			case "hints":
				return s.stringsValue(&o.Hints)
			case "extensions":
				raw, ok := s.value()
				return ok && raw[0] == '{' && json.Unmarshal(raw, &o.Extensions) == nil
			case "allowCredentials":
				list := []CredentialDescriptor{}
				ok := s.array(func() bool {
					var d CredentialDescriptor
					ok := s.object(func(k []byte) bool {
						switch string(k) {
						case "type":
							return s.stringValue(&d.Type)
						case "id":
							return s.bytesValue(&d.ID)
						case "transports":
							return s.stringsValue(&d.Transports)
						}
						return s.unknown(k, "type", "id", "transports")
					})
					list = append(list, d)
					return ok
				})
				o.AllowCredentials = list
				return ok
			}
			return s.unknown(key, requestMembers...)
		}
	}
	if !s.object(members(&outer, true)) {
		return nil, false
	}
	if s.ws(); s.i != len(s.b) {
		return nil, false
	}
	if hasInner {
		return &inner, true
	}
	return &outer, true
}
