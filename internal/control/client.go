package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
)

// ErrNotRunning is returned by a Client when no key answers on its socket.
var ErrNotRunning = errors.New("no vkey is running there")

// APIError is an error answer of the control API.
type APIError struct {
	Status  int
	Message string
}

// Error implements error.
func (e *APIError) Error() string { return e.Message }

// Client calls the control API of one running key.
type Client struct {
	hc     *http.Client
	base   string
	target string
}

// NewUnixClient returns a client of the key listening on socket. It
// talks to it only if the socket's folder is this user's alone and this
// user serves it (see CheckRuntimeDir); otherwise calls fail with an
// *UntrustedError.
func NewUnixClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialUnix(ctx, socket)
		},
		DisableKeepAlives: true,
	}
	return &Client{hc: &http.Client{Transport: tr}, base: "http://vkey", target: socket}
}

// NewHTTPClient returns a client of the key whose loopback address is
// baseURL (http://127.0.0.1:PORT).
func NewHTTPClient(baseURL string) *Client {
	return &Client{hc: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, base: baseURL, target: baseURL}
}

// Do sends method path with in (if not nil) as JSON and decodes the answer
// into out (if not nil). An error answer is an *APIError; a socket where
// nobody listens is ErrNotRunning.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.do(ctx, method, path, in, out)
	return err
}

// do is Do, returning the answer's header too.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("control API request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if u, ok := asUntrusted(err); ok {
			return nil, u
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w (%s)", ErrNotRunning, c.target)
		}
		return nil, fmt.Errorf("control API %s: %w", c.target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("control API answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e apiError
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return nil, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("decoding control API answer: %w", err)
		}
	}
	return resp.Header, nil
}

// Info is GET /info.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var info Info
	if err := c.Do(ctx, http.MethodGet, "/info", nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Attestation is GET /attestation: the attestation root of the key.
func (c *Client) Attestation(ctx context.Context) (*Attestation, error) {
	var a Attestation
	if err := c.Do(ctx, http.MethodGet, "/attestation", nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Approve is POST /presence/approve: it answers the pending request with
// a touch.
func (c *Client) Approve(ctx context.Context) (*PresenceState, error) {
	var st PresenceState
	if err := c.Do(ctx, http.MethodPost, "/presence/approve", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Deny is POST /presence/deny.
func (c *Client) Deny(ctx context.Context) (*PresenceState, error) {
	var st PresenceState
	if err := c.Do(ctx, http.MethodPost, "/presence/deny", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// PowerCycle is POST /power-cycle.
func (c *Client) PowerCycle(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/power-cycle", nil, nil)
}

// CredentialsPage is GET /credentials: one page of at most limit
// credentials (0: the key's default) of rpID (all if empty) after cursor
// ("" for the first page), and the cursor of the next page ("" after the
// last).
func (c *Client) CredentialsPage(ctx context.Context, rpID, cursor string, limit int) (creds []Credential, next string, err error) {
	q := url.Values{}
	if rpID != "" {
		q.Set("rpId", rpID)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/credentials"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	h, err := c.do(ctx, http.MethodGet, path, nil, &creds)
	if err != nil {
		return nil, "", err
	}
	return creds, h.Get(NextCursorHeader), nil
}

// Credentials lists every credential of rpID (all if empty), following
// the cursors of GET /credentials page by page (of at most limit; 0 for
// the key's default). A credential added or removed meanwhile may or may
// not be listed; none is listed twice.
func (c *Client) Credentials(ctx context.Context, rpID string, limit int) ([]Credential, error) {
	var all []Credential
	cursor := ""
	for {
		page, next, err := c.CredentialsPage(ctx, rpID, cursor, limit)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		if next == cursor {
			return nil, fmt.Errorf("control API %s: the credential list does not advance", c.target)
		}
		cursor = next
	}
}
