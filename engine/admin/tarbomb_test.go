package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// paxSparseBomb is a tar archive of about 10 KB whose one file, x.yaml,
// claims size bytes: a PAX header in GNU sparse format 1.0 declares the
// logical size, and the one stored byte comes after a sparse map that
// makes the rest a hole (https://www.gnu.org/software/tar/manual/html_node/Sparse-Formats.html).
// archive/tar's Writer cannot write sparse files, so the blocks are
// written by hand.
func paxSparseBomb(size int64) []byte {
	var b bytes.Buffer
	pax := ""
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", "x.yaml"}, {"GNU.sparse.realsize", fmt.Sprint(size)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		pax += fmt.Sprint(n) + rec
	}
	b.Write(tarBlock("PaxHeaders/x.yaml", int64(len(pax)), 'x'))
	b.Write(pad512([]byte(pax)))
	// The sparse map (one region: the last byte) then the byte itself;
	// padding up to ~10 KB, as the archive had.
	sparseMap := pad512(fmt.Appendf(nil, "1\n%d\n1\n", size-1))
	data := append(sparseMap, pad512([]byte("r"))...)
	b.Write(tarBlock("GNUSparseFile.0/x.yaml", int64(len(data)), '0'))
	b.Write(data)
	b.Write(make([]byte, 10<<10-b.Len()))
	return b.Bytes()
}

func pad512(p []byte) []byte {
	return append(p, make([]byte, (512-len(p)%512)%512)...)
}

// tarBlock is a ustar header block.
func tarBlock(name string, size int64, typ byte) []byte {
	h := make([]byte, 512)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], fmt.Sprintf("%011o\x00", 0))
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	copy(h[148:], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// A 10 KB archive whose file claims 1 GiB is refused on its header: no
// byte of it is read, nothing is written to the temp directory.
func TestBacktestRefusesSparseTarBomb(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	bomb := paxSparseBomb(1 << 30)
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
	res := tryRules(many, nil, nil)
	if res.OK || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Msg, "more than 256 rule files") {
		t.Fatalf("tryRules: %+v", res)
	}
	var tarball bytes.Buffer
	for _, rf := range many {
		tarball.Write(tarBlock(filepath.Join("rules", rf.Name), int64(len(rf.Data)), '0'))
		tarball.Write(pad512([]byte(rf.Data)))
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
		b.Write(tarBlock(rf.Name, int64(len(rf.Data)), '0'))
		b.Write(pad512([]byte(rf.Data)))
	}
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

func (f *adminFixture) post(t *testing.T, path, ct string, body []byte) (int, string) {
	t.Helper()
	status, _, out := f.send(t, http.MethodPost, path, string(body), map[string]string{"Content-Type": ct})
	return status, out
}
