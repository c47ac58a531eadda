package apperr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"ferry/internal/apperr"
)

func TestProblemMapsCodesAndHidesInternalText(t *testing.T) {
	cases := []struct {
		err        error
		status     int
		code       apperr.Code
		field      string
		mustNotSee string
	}{
		{apperr.Invalid("$top", "must be a non-negative integer"), 400, apperr.EINVALID, "$top", ""},
		{fmt.Errorf("wrapped: %w", apperr.New(apperr.ENOTFOUND, "no data source %q", "x")), 404, apperr.ENOTFOUND, "", ""},
		{apperr.Wrap(errors.New("pq: password=hunter2"), apperr.EUNAVAILABLE, "Jira is not answering"), 503, apperr.EUNAVAILABLE, "", "hunter2"},
		{errors.New("dial tcp 10.0.0.5:5432: secret internals"), 500, apperr.EINTERNAL, "", "10.0.0.5"},
		{apperr.Wrap(errors.New("stack trace"), apperr.EINTERNAL, "db exploded at row 7"), 500, apperr.EINTERNAL, "", "row 7"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		apperr.Write(rec, httptest.NewRequest("GET", "/", nil), nil, c.err)
		if rec.Code != c.status {
			t.Errorf("%v: status %d, want %d", c.err, rec.Code, c.status)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("content type %q", ct)
		}
		var p apperr.Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Code != c.code || p.Status != c.status || p.Field != c.field {
			t.Errorf("%v: problem %+v", c.err, p)
		}
		if c.mustNotSee != "" && strings.Contains(rec.Body.String(), c.mustNotSee) {
			t.Errorf("body leaks %q: %s", c.mustNotSee, rec.Body)
		}
	}
}

func TestUnauthorizedAsksForBasicCredentials(t *testing.T) {
	rec := httptest.NewRecorder()
	apperr.Write(rec, httptest.NewRequest("GET", "/", nil), nil, apperr.New(apperr.EUNAUTHORIZED, "token revoked"))
	if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
	}
}
