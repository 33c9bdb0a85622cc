package browser

import (
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// callerOrigin is a checked origin: its serialization (what clientDataJSON
// carries) and its effective domain.
type callerOrigin struct {
	serialized string
	host       string
}

// parseOrigin checks that origin is a secure context a page could call
// WebAuthn from: https, or http on localhost (a potentially trustworthy
// origin, Secure Contexts section 3.1), with a domain, not an IP address
// (WebAuthn L3 section 5.1.3 step 7: "If effectiveDomain is not a valid
// domain, then return a DOMException whose name is SecurityError").
func parseOrigin(origin string) (callerOrigin, error) {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return callerOrigin{}, domError(SecurityError, err, "%q is not an origin (want https://host[:port])", origin)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return callerOrigin{}, domError(SecurityError, nil, "%q is not an origin: it has more than scheme, host and port", origin)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return callerOrigin{}, domError(SecurityError, nil, "the origin %q is an IP address, which has no effective domain WebAuthn accepts", origin)
	}
	local := host == "localhost" || strings.HasSuffix(host, ".localhost")
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && local:
	default:
		return callerOrigin{}, domError(SecurityError, nil, "public-key credentials are only available to https origins and http://localhost, not %q", origin)
	}
	ser := strings.ToLower(u.Scheme) + "://" + host
	if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443") && !(u.Scheme == "http" && p == "80") {
		ser += ":" + p
	}
	return callerOrigin{serialized: ser, host: host}, nil
}

// checkRPID returns the RP ID a ceremony from o uses: rpID, or the
// origin's effective domain when rpID is empty. A given rpID must be the
// effective domain or a registrable domain suffix of it (HTML's "is a
// registrable domain suffix of or is equal to", WebAuthn L3 section 5.1.3
// step 8), which rules out public suffixes such as "com" or "github.io".
func checkRPID(o callerOrigin, rpID string) (string, error) {
	if rpID == "" {
		return o.host, nil
	}
	id := strings.ToLower(rpID)
	if id == o.host {
		return id, nil
	}
	if !strings.HasSuffix(o.host, "."+id) || net.ParseIP(id) != nil {
		return "", domError(SecurityError, nil, "the RP ID %q is neither the origin's domain %q nor a registrable suffix of it", rpID, o.host)
	}
	if id == "localhost" {
		return id, nil
	}
	if ps, _ := publicsuffix.PublicSuffix(id); ps == id {
		return "", domError(SecurityError, nil, "the RP ID %q is a public suffix, which no origin may claim", rpID)
	}
	return id, nil
}
