package odata

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is a request the service refuses, in the shape OData clients read
// (JSON Format §21.1): {"error":{"code","message","target","details":[]}}.
// Message and Target are shown to the client, so they echo only what the
// client sent (an option name, a property name), never data from Jira.
type Error struct {
	Status  int    // 400 malformed, 406 format not served, 501 valid OData that Ferry does not support
	Code    string // one of the Code* constants
	Message string
	Target  string // the query option or property at fault, e.g. "$top" or "Summary"
	// RetryAfter, when set, goes out as the Retry-After header (seconds): a
	// 429 or 503 that will pass.
	RetryAfter string
}

// Error codes: the one vocabulary of every feed error, OData and CSV alike.
// A handful on purpose: clients branch on the status, people read the
// message.
const (
	CodeBadRequest         = "BadRequest"         // 400: malformed query option or expression, or a query Jira refused
	CodeUnknownProperty    = "UnknownProperty"    // 400: a property the entity set does not have
	CodeTypeMismatch       = "TypeMismatch"       // 400: a literal that does not fit the property's type
	CodeInvalidSkipToken   = "InvalidSkipToken"   // 400: tampered, truncated, foreign or stale $skiptoken
	CodeUnauthorized       = "Unauthorized"       // 401: no, unknown, revoked or expired access token
	CodeLicenseRequired    = "LicenseRequired"    // 402: the app has no active license on the site
	CodeForbidden          = "Forbidden"          // 403: the token's owner may not (or no longer) read through Ferry
	CodeNotFound           = "NotFound"           // 404: no such data source, table, resource or entity
	CodeNotAcceptable      = "NotAcceptable"      // 406: a format other than the ones served
	CodeTooManyRequests    = "TooManyRequests"    // 429
	CodeInternal           = "InternalError"      // 500: a bug on our side; details stay in the log
	CodeNotImplemented     = "NotImplemented"     // 501: valid OData, not supported by Ferry
	CodeServiceUnavailable = "ServiceUnavailable" // 503: Jira or a dependency is not answering
)

func (e *Error) Error() string {
	if e.Target != "" {
		return fmt.Sprintf("odata %d %s: %s: %s", e.Status, e.Code, e.Target, e.Message)
	}
	return fmt.Sprintf("odata %d %s: %s", e.Status, e.Code, e.Message)
}

func badRequest(target, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Target: target, Message: fmt.Sprintf(format, args...)}
}

func unknownProperty(target, name string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeUnknownProperty, Target: target,
		Message: fmt.Sprintf("%s: unknown property %q", target, name)}
}

func typeMismatch(target, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeTypeMismatch, Target: target, Message: fmt.Sprintf(format, args...)}
}

func notImplemented(target, format string, args ...any) *Error {
	return &Error{Status: http.StatusNotImplemented, Code: CodeNotImplemented, Target: target, Message: fmt.Sprintf(format, args...)}
}

func internal(format string, args ...any) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: fmt.Sprintf(format, args...)}
}

// OData-Version Ferry speaks: its $metadata is CSDL 4.0 and its payloads
// are 4.0 JSON, which every BI client reads. It accepts a few 4.01 request
// conveniences (see the package doc) because 4.01 is a superset.
const Version = "4.0"

// Content types of the three kinds of response.
const (
	ContentTypeJSON     = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false"
	ContentTypeMetadata = "application/xml"
	ContentTypeError    = "application/json;odata.metadata=minimal"
)

// SetHeaders sets OData-Version and Content-Type. Call it before WriteHeader.
func SetHeaders(h http.Header, contentType string) {
	h.Set("OData-Version", Version)
	h.Set("Content-Type", contentType)
}

type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Target  string        `json:"target,omitempty"`
	Details []errorDetail `json:"details"` // always empty: one error per response
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

// WriteError answers with err as an OData error. An err that is not (and
// does not wrap) an *Error is answered 500 with a fixed message: its text may
// hold internals, so the caller logs it, not the client.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = internal("An internal error occurred. It has been logged.")
	} else if e.Status >= 500 && e.Status != http.StatusNotImplemented && e.Status != http.StatusServiceUnavailable {
		e = internal("An internal error occurred. It has been logged.")
	}
	SetHeaders(w.Header(), ContentTypeError)
	w.Header().Set("Cache-Control", "no-store")
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(errorBody{errorObject{Code: e.Code, Message: e.Message, Target: e.Target, Details: []errorDetail{}}})
}
