// Package apperr is Ferry's one application error type. Codes are mapped to
// HTTP statuses in one place, and errors reach clients as RFC 9457
// application/problem+json; internal errors never show their internal text.
package apperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"ferry/internal/reqinfo"
)

// Code classifies an error for clients.
type Code string

const (
	EINVALID        Code = "invalid"          // 400: bad input, names the field
	EUNAUTHORIZED   Code = "unauthorized"     // 401: missing or bad credentials
	EPAYMENT        Code = "license_required" // 402: no valid app license
	EFORBIDDEN      Code = "forbidden"        // 403: authenticated, not allowed
	ENOTFOUND       Code = "not_found"        // 404
	ECONFLICT       Code = "conflict"         // 409
	EGONE           Code = "gone"             // 410
	ETOOLARGE       Code = "too_large"        // 413
	ERATELIMIT      Code = "rate_limited"     // 429
	EINTERNAL       Code = "internal"         // 500: details only in the (redacted) log
	ENOTIMPLEMENTED Code = "not_implemented"  // 501: a valid request Ferry does not support
	EUNAVAILABLE    Code = "unavailable"      // 503: upstream or dependency down
)

var statuses = map[Code]int{
	EINVALID: 400, EUNAUTHORIZED: 401, EPAYMENT: 402, EFORBIDDEN: 403, ENOTFOUND: 404,
	ECONFLICT: 409, EGONE: 410, ETOOLARGE: 413, ERATELIMIT: 429, EINTERNAL: 500,
	ENOTIMPLEMENTED: 501, EUNAVAILABLE: 503,
}

// Error is an error with a code and a message safe to show a client.
type Error struct {
	Code    Code
	Message string // shown to the client; never secrets or personal data
	Field   string // the input at fault, for EINVALID
	Err     error  // the cause, logged (redacted) and never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports bad input in one named field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a code and client message to a cause.
func Wrap(err error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the code of err, EINTERNAL for anything else.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// Status is the HTTP status for a code.
func Status(c Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return 500
}

// Problem is the RFC 9457 body.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   Code   `json:"code"`
	Field  string `json:"field,omitempty"`
}

// ProblemOf turns any error into what a client may see.
func ProblemOf(err error) Problem {
	var e *Error
	if !errors.As(err, &e) || e.Code == EINTERNAL {
		return Problem{Type: "about:blank", Title: http.StatusText(500), Status: 500, Code: EINTERNAL,
			Detail: "An internal error occurred. It has been logged."}
	}
	st := Status(e.Code)
	return Problem{Type: "about:blank", Title: http.StatusText(st), Status: st, Detail: e.Message, Code: e.Code, Field: e.Field}
}

// Write sends err as problem+json and logs internal errors (redacted by the
// logger). The response never carries the internal cause.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := ProblemOf(err)
	reqinfo.SetError(r.Context(), string(p.Code), p.Detail)
	if p.Status >= 500 && log != nil {
		log.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "err", err)
	}
	if p.Status == 401 && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="Ferry", charset="UTF-8"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
