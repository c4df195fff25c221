package access

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dmic-nhs/dmic/services/internal/audit"
	"github.com/dmic-nhs/dmic/services/internal/identity"
)

// Mux is the router of an HTTP API: a ServeMux that remembers the patterns
// registered on it, so that a service with a route nobody wrote a rule for
// does not start (Guard.CheckHTTP).
type Mux struct {
	*http.ServeMux
	patterns []string
}

// NewMux is an empty router.
func NewMux() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers h for pattern.
func (m *Mux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Patterns are the patterns registered, in order.
func (m *Mux) Patterns() []string { return append([]string(nil), m.patterns...) }

// CheckHTTP reports the routes of m that are not in the table.
func (g *Guard) CheckHTTP(m *Mux) error {
	if ms := missing(m.patterns, g.httpRules); len(ms) > 0 {
		return fmt.Errorf("HTTP routes without an authorisation rule (add them to internal/access, HTTP): %s", strings.Join(ms, ", "))
	}
	return nil
}

// HTTP is m behind the guard: each request to a route is authenticated and
// authorised by the route's rule, and audited, before its handler runs. A
// request that matches no route is answered by m (404, 405) without one.
func (g *Guard) HTTP(m *Mux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := m.Handler(r)
		if pattern == "" {
			m.ServeHTTP(w, r)
			return
		}
		rule, known := g.httpRules[pattern]
		cr := identity.Credentials{TLS: r.TLS, Authorization: r.Header.Get("Authorization")}
		caller, who, rf := g.check(r.Context(), pattern, rule, known, cr)
		id := audit.NewID()
		if rf != nil {
			g.refuse(ProtocolHTTP, pattern, r.RemoteAddr, who, id, rf.reason, rf.message, "")
			code := http.StatusForbidden
			if rf.unauthenticated {
				code = http.StatusUnauthorized
			}
			WriteError(w, code, rf.message)
			return
		}
		if rule.Open {
			m.ServeHTTP(w, r)
			return
		}
		c := &call{}
		ctx := identity.NewContext(r.Context(), caller)
		ctx = contextWithCall(ctx, c)
		if rule.Changes {
			if err := g.begin(ctx, ProtocolHTTP, pattern, r.RemoteAddr, caller, id); err != nil {
				g.refuse(ProtocolHTTP, pattern, r.RemoteAddr, &caller, id, ReasonNotAudited, err.Error(), "")
				WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("not carried out: it could not be recorded on the audit trail (%v); retry later", err))
				return
			}
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		m.ServeHTTP(rec, r.WithContext(ctx))
		failure := ""
		if rec.status >= 400 {
			failure = strconv.Itoa(rec.status)
		}
		g.end(ProtocolHTTP, pattern, r.RemoteAddr, caller, rule, id, c, failure, http.StatusText(rec.status))
	})
}

// WriteError answers code with {"error": msg}, as every dmic HTTP error is.
func WriteError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// statusRecorder notes the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
