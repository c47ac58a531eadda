package jirasim

import (
	"strconv"
	"strings"
	"time"
)

// corpus is a consistent read view over generated issues plus those created
// through REST (which get indices after the generated ones).
type corpus struct {
	d     *dataset
	extra []*issue
	sim   *Sim // renders the data model's fields for JQL (jql_model.go)
	// touched: issues a planted comment or worklog updated later than
	// their own updated date (by index).
	touched map[int]time.Time
}

func (c corpus) len() int { return c.d.n + len(c.extra) }

func (c corpus) project(i int) int {
	if i < c.d.n {
		return c.d.projectOf(i)
	}
	return c.extra[i-c.d.n].Project
}

func (c corpus) status(i int) int {
	if i < c.d.n {
		return c.d.status(i)
	}
	return c.extra[i-c.d.n].Status
}

func (c corpus) created(i int) time.Time {
	if i < c.d.n {
		return c.d.created(i)
	}
	return c.extra[i-c.d.n].Created
}

// updated is when the issue last changed: its own updated date, or a
// planted comment or worklog added since.
func (c corpus) updated(i int) time.Time {
	var t time.Time
	if i < c.d.n {
		t = c.d.updated(i)
	} else {
		t = c.extra[i-c.d.n].Updated
	}
	if u, ok := c.touched[i]; ok && u.After(t) {
		return u
	}
	return t
}

func (c corpus) keyNum(i int) int {
	if i < c.d.n {
		return c.d.keyNum(i, c.d.projectOf(i))
	}
	return c.extra[i-c.d.n].KeyNum
}

func (c corpus) issue(i int) *issue {
	if i < c.d.n {
		return c.d.issue(i)
	}
	return c.extra[i-c.d.n]
}

func (c corpus) key(i int) string {
	return c.d.projects[c.project(i)].Key + "-" + strconv.Itoa(c.keyNum(i))
}

// lookup resolves an issue id ("10001") or key ("CORE-12") to an index.
// malformed reports input that is neither.
func (c corpus) lookup(idOrKey string) (idx int, ok, malformed bool) {
	if id, err := strconv.Atoi(idOrKey); err == nil {
		i := id - 10001
		return i, i >= 0 && i < c.len(), false
	}
	dash := strings.LastIndexByte(idOrKey, '-')
	if dash <= 0 {
		return 0, false, true
	}
	num, err := strconv.Atoi(idOrKey[dash+1:])
	if err != nil || num <= 0 || !validProjectKey(idOrKey[:dash]) {
		return 0, false, true
	}
	p, found := c.d.byKey[strings.ToUpper(idOrKey[:dash])]
	if !found {
		return 0, false, false
	}
	gen := c.d.starts[p+1] - c.d.starts[p]
	if num <= gen {
		return c.d.starts[p] + num - 1, true, false
	}
	for k, is := range c.extra {
		if is.Project == p && is.KeyNum == num {
			return c.d.n + k, true, false
		}
	}
	return 0, false, false
}

func validProjectKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i] | 0x20 // lower-case letters; digits and '_' unaffected
		if !(c >= 'a' && c <= 'z' || i > 0 && (k[i] >= '0' && k[i] <= '9' || k[i] == '_')) {
			return false
		}
	}
	return true
}
