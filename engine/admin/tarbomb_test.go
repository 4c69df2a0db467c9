package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/friendflow/friendflow/internal/hostile"
)

// A 10 KB archive whose file claims 1 GiB is refused on its header: no
// byte of it is read, nothing is written to the temp directory.
func TestBacktestRefusesSparseTarBomb(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	bomb := hostile.SparseTar(1 << 30)
	files, err := untar(bomb)
	if err == nil || !strings.Contains(err.Error(), "claims 1073741824 bytes") {
		t.Fatalf("untar: %d files, err %v", len(files), err)
	}
	f := newAdminFixture(t)
	status, body := f.post(t, "/backtest", "application/x-tar", bomb)
	if status != http.StatusBadRequest || !strings.Contains(body, "claims 1073741824 bytes") {
		t.Fatalf("POST /backtest: %d %s", status, body)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the temp directory holds %v", left)
	}
}

// Many files are refused by their count, in every form: tar, JSON, and
// the console's form (through tryRules); no file is written anywhere.
func TestBacktestBoundsFileCount(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	many := make([]RuleFile, maxCandidateFiles+1)
	for i := range many {
		many[i] = RuleFile{Name: fmt.Sprintf("r%d.yaml", i), Data: "rules: []\n"}
	}
	body, _ := json.Marshal(map[string]any{"files": many})
	f := newAdminFixture(t)
	if status, out := f.post(t, "/backtest", "application/json", body); status != http.StatusBadRequest || !strings.Contains(out, "more than 256 rule files") {
		t.Fatalf("JSON: %d %s", status, out)
	}
	res := tryRules(context.Background(), many, nil, nil)
	if res.OK || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Msg, "more than 256 rule files") {
		t.Fatalf("tryRules: %+v", res)
	}
	var tarball bytes.Buffer
	for _, rf := range many {
		tarball.Write(hostile.TarHeader(filepath.Join("rules", rf.Name), int64(len(rf.Data)), '0'))
		tarball.Write(hostile.Pad512([]byte(rf.Data)))
	}
	tarball.Write(make([]byte, 1024))
	if status, out := f.post(t, "/backtest", "application/x-tar", tarball.Bytes()); status != http.StatusBadRequest || !strings.Contains(out, "more than 256 rule files") {
		t.Fatalf("tar: %d %s", status, out)
	}
	// Within the bounds, the same files load from memory.
	if status, out := f.post(t, "/backtest", "application/x-tar", tarballOf(many[:maxCandidateFiles])); status != http.StatusOK {
		t.Fatalf("256 files: %d %s", status, out)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the temp directory holds %v", left)
	}
}

func tarballOf(files []RuleFile) []byte {
	var b bytes.Buffer
	for _, rf := range files {
		b.Write(hostile.TarHeader(rf.Name, int64(len(rf.Data)), '0'))
		b.Write(hostile.Pad512([]byte(rf.Data)))
	}
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

func (f *adminFixture) post(t *testing.T, path, ct string, body []byte) (int, string) {
	t.Helper()
	status, _, out := f.send(t, http.MethodPost, path, string(body), map[string]string{"Content-Type": ct})
	return status, out
}
