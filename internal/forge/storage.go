package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"ferry/internal/apperr"
	"ferry/internal/tenant"
)

// Data sources and settings on Forge live in Forge's Key-Value Store, in the
// customer's own Atlassian site, reached through its REST API
// (FERRY_FORGE_STORAGE_URL) with the installation's app system token
// (scope storage:app). Storage is the same PropertyStore the Connect app
// properties are (export.PropertyStore), so the connector does not know
// which it uses.

// maxStorageKeys bounds a listing: a site has a few dozen data sources.
const maxStorageKeys = 2000

// kvsPageSize is the most a query returns at once (Forge's limit).
const kvsPageSize = 20

// Storage is one installation's Forge Key-Value Store.
type Storage struct {
	f    *Remote
	inst tenant.Installation
}

// Storage returns the installation's Forge storage. Each call reads the
// current system token, so a token refreshed meanwhile is used.
func (f *Remote) Storage(ctx context.Context, inst tenant.Installation) (*Storage, error) {
	if _, err := f.systemToken(ctx, inst); err != nil {
		return nil, err
	}
	return &Storage{f: f, inst: inst}, nil
}

// kvsError is a non-2xx answer of the storage API: {code, message}.
type kvsError struct {
	Status  int
	Code    string
	Message string
}

func (e *kvsError) Error() string {
	return fmt.Sprintf("forge storage: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// call POSTs one operation and decodes the answer into out (if any).
func (s *Storage) call(ctx context.Context, op string, body any, out any) error {
	tok, err := s.f.systemToken(ctx, s.inst)
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.f.o.StorageURL, "/")+"/v1/"+op, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.f.o.APIClient.Do(req)
	if err != nil {
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Forge storage could not be reached; try again shortly.")
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Forge storage's answer could not be read; try again shortly.")
	}
	if resp.StatusCode/100 != 2 {
		ke := &kvsError{Status: resp.StatusCode}
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &e) == nil {
			ke.Code, ke.Message = e.Code, e.Message
		}
		return ke
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// Keys lists the keys that start with prefix.
func (s *Storage) Keys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	after := ""
	for {
		q := map[string]any{"limit": kvsPageSize, "where": []map[string]any{{"property": "key", "condition": "BEGINS_WITH", "values": []string{prefix}}}}
		if prefix == "" {
			delete(q, "where")
		}
		if after != "" {
			q["after"] = after
		}
		var page struct {
			Data []struct {
				Key string `json:"key"`
			} `json:"data"`
			Cursor string `json:"cursor"`
		}
		if err := s.call(ctx, "query", q, &page); err != nil {
			return nil, err
		}
		for _, d := range page.Data {
			if strings.HasPrefix(d.Key, prefix) {
				keys = append(keys, d.Key)
			}
		}
		if page.Cursor == "" || page.Cursor == after || len(page.Data) == 0 {
			return keys, nil
		}
		if len(keys) >= maxStorageKeys {
			return nil, errors.New("forge storage: more keys than Ferry reads")
		}
		after = page.Cursor
	}
}

// Get decodes the value stored under key into out.
func (s *Storage) Get(ctx context.Context, key string, out any) (bool, error) {
	var got struct {
		Value json.RawMessage `json:"value"`
	}
	err := s.call(ctx, "get", map[string]any{"key": key}, &got)
	var ke *kvsError
	if errors.As(err, &ke) && ke.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(got.Value) == 0 {
		return false, nil
	}
	return true, json.Unmarshal(got.Value, out)
}

// Put stores value under key (last write wins).
func (s *Storage) Put(ctx context.Context, key string, value any) error {
	v, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return s.call(ctx, "set", map[string]any{"key": key, "value": json.RawMessage(v)}, nil)
}

// Delete removes key; a missing key is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	err := s.call(ctx, "delete", map[string]any{"key": key}, nil)
	var ke *kvsError
	if errors.As(err, &ke) && ke.Status == http.StatusNotFound {
		return nil
	}
	return err
}
