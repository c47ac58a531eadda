// Package reqinfo carries what is learned about a request while it is
// handled — which tenant, which user (as a pseudonym), which error — back out
// to the middleware that wraps the handler (request logging, metrics). The
// outer middleware installs an empty Info; authentication and error writing
// fill it in.
package reqinfo

import (
	"context"
	"sync"
)

// Info is mutable and safe for concurrent use.
type Info struct {
	mu            sync.Mutex
	tenantID      string
	userPseudonym string
	errCode       string
	errMessage    string
}

type key struct{}

// With returns a context carrying a fresh Info.
func With(ctx context.Context) (context.Context, *Info) {
	i := &Info{}
	return context.WithValue(ctx, key{}, i), i
}

// From returns the request's Info, or nil outside a request.
func From(ctx context.Context) *Info {
	i, _ := ctx.Value(key{}).(*Info)
	return i
}

// SetIdentity records the tenant and the user's pseudonym (never a raw id).
func SetIdentity(ctx context.Context, tenantID, userPseudonym string) {
	if i := From(ctx); i != nil {
		i.mu.Lock()
		i.tenantID, i.userPseudonym = tenantID, userPseudonym
		i.mu.Unlock()
	}
}

// SetError records the error code and a client-safe message.
func SetError(ctx context.Context, code, message string) {
	if i := From(ctx); i != nil {
		i.mu.Lock()
		i.errCode, i.errMessage = code, message
		i.mu.Unlock()
	}
}

// Identity returns the recorded tenant id and user pseudonym.
func (i *Info) Identity() (tenantID, userPseudonym string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.tenantID, i.userPseudonym
}

// Error returns the recorded error code and message.
func (i *Info) Error() (code, message string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.errCode, i.errMessage
}
