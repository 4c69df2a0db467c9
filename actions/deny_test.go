package actions_test

import (
	"context"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/actions"
)

func TestDenySpec(t *testing.T) {
	spec := actions.Deny{}.Spec()
	if spec.Name != "deny" || !spec.Sync {
		t.Fatalf("spec %+v", spec)
	}
	for _, code := range []any{38000, 38001, 39000, int64(38500), 38500.0, actions.Deferred{}} {
		p, err := spec.Check(map[string]any{"code": code})
		if err != nil {
			t.Errorf("code %v: %v", code, err)
			continue
		}
		if _, deferred := code.(actions.Deferred); !deferred {
			if _, ok := p["code"].(int64); !ok {
				t.Errorf("code %v normalised to %T", code, p["code"])
			}
		}
		if p["reason"] != "" {
			t.Errorf("reason default %#v", p["reason"])
		}
	}
	for want, p := range map[string]map[string]any{
		"code: required":            {},
		"37999 is outside":          {"code": 37999},
		"39001 is outside":          {"code": 39001},
		"code: 0 is outside":        {"code": 0},
		"code: want integer":        {"code": "38001"},
		"code: want integer, got n": {"code": 38000.5},
		"unknown parameter":         {"code": 38001, "message": "x"},
	} {
		_, err := spec.Check(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want an error containing %q", p, err, want)
		}
	}
	if err := (actions.Deny{}).Do(context.Background(), actions.Job{}, map[string]any{"code": int64(38001)}); err != nil {
		t.Errorf("Do: %v", err)
	}
}
