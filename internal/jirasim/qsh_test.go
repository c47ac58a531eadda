package jirasim

import "testing"

func TestQSHKnownAnswers(t *testing.T) {
	cases := []struct{ method, path, base, query, want string }{
		{"GET", "/", "", "", "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"},
		{"GET", "", "", "", "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"},
		{"POST", "/rest/api/2/issue", "", "", "43dd1779e33c34fae00c308d62e5dd153a32147d1bcb5d40b3936457fda0ece4"},
		{"post", "/rest/api/2/issue/", "", "", "43dd1779e33c34fae00c308d62e5dd153a32147d1bcb5d40b3936457fda0ece4"},
		{"POST", "/wiki/rest/api/2/issue", "/wiki", "", "43dd1779e33c34fae00c308d62e5dd153a32147d1bcb5d40b3936457fda0ece4"},
		{"POST", "/rest/api/2/issue", "", "jwt=abc.def.ghi", "43dd1779e33c34fae00c308d62e5dd153a32147d1bcb5d40b3936457fda0ece4"},
	}
	for _, c := range cases {
		if got := QSH(c.method, c.path, c.base, c.query); got != c.want {
			t.Errorf("QSH(%q %q base %q ?%s) = %s, want %s", c.method, c.path, c.base, c.query, got, c.want)
		}
	}
}

func TestCanonicalRequest(t *testing.T) {
	cases := []struct{ method, path, query, want string }{
		{"get", "/a&b/", "", "GET&/a%26b&"},
		{"GET", "/search", "b=2&a=1&a=0", "GET&/search&a=0,1&b=2"},
		{"GET", "/search", "q=hello+world&x=%2A", "GET&/search&q=hello%20world&x=%2A"},
		{"GET", "/s", "Z=1&a=2&jwt=x", "GET&/s&Z=1&a=2"},
		{"GET", "/s", "k=a%2Cb", "GET&/s&k=a%2Cb"},
		{"GET", "/s", "cp=&lic=none", "GET&/s&cp=&lic=none"},
	}
	for _, c := range cases {
		if got := canonicalRequest(c.method, c.path, "", c.query); got != c.want {
			t.Errorf("canonicalRequest(%s %s ?%s) = %q, want %q", c.method, c.path, c.query, got, c.want)
		}
	}
}
