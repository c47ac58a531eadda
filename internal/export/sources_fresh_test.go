package export

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// memProps is a site's storage shared by two replicas' Sources.
type memProps struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (p *memProps) Keys(_ context.Context, prefix string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for k := range p.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (p *memProps) Get(_ context.Context, key string, out any) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.m[key]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, out)
}

func (p *memProps) Put(_ context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string][]byte{}
	}
	p.m[key] = b
	return nil
}

func (p *memProps) Delete(_ context.Context, key string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, key)
	return nil
}

// TestSettingsSavedOnAnotherReplicaAreObeyedWithinTheLifetime: replica B
// has the site's settings in memory; replica A narrows them (an IP
// allowlist, an export restriction). Once B's copy is older than its
// lifetime, B's next read returns A's settings: it never answers the old
// ones while it asks Jira again in the background.
func TestSettingsSavedOnAnotherReplicaAreObeyedWithinTheLifetime(t *testing.T) {
	ctx := context.Background()
	props := &memProps{}
	a := &Sources{TTL: 20 * time.Millisecond}
	b := &Sources{TTL: 20 * time.Millisecond}
	const maxDays = 90
	before, err := b.Settings(ctx, props, "t1", maxDays)
	if err != nil || len(before.AllowedNetworks) != 0 || !before.Exporters.Everyone {
		t.Fatalf("defaults: %+v %v", before, err)
	}
	narrowed := before
	narrowed.AllowedNetworks = []string{"203.0.113.0/24"}
	narrowed.Exporters = Audience{Groups: []string{"bi-team"}, Users: []string{}}
	if err := props.Put(ctx, settingsKey, narrowed); err != nil { // what A's save writes
		t.Fatal(err)
	}
	if _, err := a.Settings(ctx, props, "t1", maxDays); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // B's copy is past its lifetime
	st, err := b.Settings(ctx, props, "t1", maxDays)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.AllowedNetworks) != 1 || st.AllowedNetworks[0] != "203.0.113.0/24" || st.Exporters.Everyone {
		t.Fatalf("B reads %+v after the lifetime, want A's narrowed settings", st)
	}
}
