package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"listen", "listen", 0}, {"listn", "listen", 1}, {"kitten", "sitting", 3},
		{"", "abc", 3}, {"flaw", "lawn", 2}, {"µs", "us", 1},
	} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"listen", "admin-listen", "rules", "data"}
	for _, tt := range []struct{ got, want string }{
		{"listn", "listen"},
		{"LISTEN", "listen"},
		{"rule", "rules"},
		{"dta", "data"},
		{"sdkappid", ""}, // nothing near enough
	} {
		if got := Closest(tt.got, known, 2); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.got, got, tt.want)
		}
	}
}
