package control

import (
	"context"
	"net/http"
)

// UVState is the body of GET and PUT /uv: the outcome the built-in user
// verification (vkey run --uv builtin) gives, like the W3C virtual
// authenticator's isUserVerified.
type UVState struct {
	Verified *bool `json:"verified"`
}

// uvState serves GET /uv.
func (s *Server) uvState(w http.ResponseWriter, r *http.Request) {
	if s.cfg.UV == nil {
		writeError(w, http.StatusNotFound, "this key has no built-in user verification (start it with vkey run --uv builtin)")
		return
	}
	v := s.cfg.UV.Verified()
	writeJSON(w, http.StatusOK, UVState{Verified: &v})
}

// setUV serves PUT /uv {"verified": true|false}.
func (s *Server) setUV(w http.ResponseWriter, r *http.Request) {
	if s.cfg.UV == nil {
		writeError(w, http.StatusNotFound, "this key has no built-in user verification (start it with vkey run --uv builtin)")
		return
	}
	var body UVState
	if !readJSON(w, r, &body) {
		return
	}
	if body.Verified == nil {
		writeError(w, http.StatusBadRequest, `body must be {"verified": true} or {"verified": false}`)
		return
	}
	s.cfg.UV.SetVerified(*body.Verified)
	s.cfg.Hub.Emit(Event{Type: EventUVSet, Source: "control"})
	writeJSON(w, http.StatusOK, body)
}

// SetUV is PUT /uv: it sets whether built-in user verification succeeds.
func (c *Client) SetUV(ctx context.Context, verified bool) error {
	return c.Do(ctx, http.MethodPut, "/uv", UVState{Verified: &verified}, nil)
}
