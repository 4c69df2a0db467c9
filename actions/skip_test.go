package actions

import (
	"errors"
	"fmt"
	"testing"
)

func TestSkipIsToldApartFromFailures(t *testing.T) {
	err := fmt.Errorf("im.friend_add: %w", Skip("own admin's event"))
	if why, ok := Skipped(err); !ok || why != "own admin's event" {
		t.Errorf("Skipped(%v) = %q, %v", err, why, ok)
	}
	for _, e := range []error{nil, errors.New("boom"), Permanent(errors.New("bad"))} {
		if _, ok := Skipped(e); ok {
			t.Errorf("Skipped(%v) is true", e)
		}
	}
}
