package jirasim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// Jira answers JSON with this exact content type.
const jsonType = "application/json;charset=UTF-8"

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", jsonType)
	w.WriteHeader(status)
	w.Write(b)
}

// writeRaw sends JSON the caller has already encoded.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", jsonType)
	w.WriteHeader(status)
	w.Write(b)
}

// errorCollection is Jira's general error shape.
type errorCollection struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

func jiraError(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, errorCollection{ErrorMessages: msgs, Errors: map[string]string{}})
}

func fieldErrors(w http.ResponseWriter, status int, errs map[string]string) {
	writeJSON(w, status, errorCollection{ErrorMessages: []string{}, Errors: errs})
}

// operationMessage is the error and status shape of the atlassian-connect
// REST resources.
type operationMessage struct {
	Message    string `json:"message"`
	StatusCode int    `json:"statusCode"`
}

func opMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, operationMessage{Message: msg, StatusCode: status})
}

const maxBody = 1 << 20

var errBodyTooLarge = errors.New("request body too large")

// readBody reads at most maxBody bytes.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, errBodyTooLarge
	}
	return b, nil
}

// decodeBody decodes a JSON request body, answering 400 itself on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := readBody(r)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		jiraError(w, http.StatusBadRequest, "Invalid request payload. Refer to the REST API documentation and try again.")
		return false
	}
	return true
}
