package audit

import "context"

// WithEarlier writes to t and reads from t and from earlier: the checkpoints
// written to a directory before they moved to the backup target keep
// counting. A name in both is read from t.
func WithEarlier(t, earlier Target) Target { return withEarlier{t, earlier} }

type withEarlier struct {
	Target         // where checkpoints are written now
	earlier Target // read only
}

func (w withEarlier) Describe() string {
	return w.Target.Describe() + " (and earlier checkpoints in " + w.earlier.Describe() + ")"
}

func (w withEarlier) List(ctx context.Context) ([]string, error) {
	now, err := w.Target.List(ctx)
	if err != nil {
		return nil, err
	}
	before, err := w.earlier.List(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range append(now, before...) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func (w withEarlier) Read(ctx context.Context, name string) ([]byte, error) {
	b, err := w.Target.Read(ctx, name)
	if err == nil {
		return b, nil
	}
	if b2, err2 := w.earlier.Read(ctx, name); err2 == nil {
		return b2, nil
	}
	return nil, err
}
