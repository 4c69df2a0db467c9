package reload

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/friendflow/friendflow/rules"
)

// Fingerprint returns a SHA-256 over the names and contents of the rule
// files at path, which is a directory or a single file. In a directory it
// takes, as the loader does, the *.yaml and *.yml entries (extension in
// any case) that do not start with "." (so Kubernetes' ..data and
// ..2026_... entries and editor swap files are skipped), without recursing;
// symlinks are followed. A single file is taken whatever its name.
//
// An entry that cannot be read (a dangling symlink, a directory or FIFO
// named x.yaml, a permission error) contributes its error rather than
// failing the whole fingerprint, so one broken file neither hides changes
// to the others nor makes every check fail. Fingerprint fails only when
// path itself cannot be read. Every file is closed before it returns.
func Fingerprint(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("rules fingerprint: %w", err)
	}
	h := sha256.New()
	buf := make([]byte, 32<<10) // shared by all files: io.Copy would allocate one each
	if !fi.IsDir() {
		fingerprintEntry(h, buf, filepath.Base(path), path, fi, nil)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return "", fmt.Errorf("rules fingerprint: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !rules.IsRuleFile(name) {
			continue
		}
		p := filepath.Join(path, name)
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			continue // not recursive
		}
		fingerprintEntry(h, buf, name, p, fi, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fingerprintEntry adds name NUL, then 0 and the content's SHA-256, or 1 and
// the error text NUL. File names hold no NUL and the digest has a fixed
// length, so different file sets cannot produce the same byte stream.
func fingerprintEntry(h hash.Hash, buf []byte, name, path string, fi os.FileInfo, statErr error) {
	io.WriteString(h, name)
	h.Write([]byte{0})
	sum, err := fingerprintFile(buf, path, fi, statErr)
	if err != nil {
		h.Write([]byte{1})
		io.WriteString(h, err.Error())
		h.Write([]byte{0})
		return
	}
	h.Write([]byte{0})
	h.Write(sum)
}

func fingerprintFile(buf []byte, path string, fi os.FileInfo, statErr error) ([]byte, error) {
	if statErr != nil {
		return nil, statErr
	}
	if !fi.Mode().IsRegular() {
		// Opening a FIFO would block the watcher forever.
		return nil, fmt.Errorf("%s: not a regular file (%v)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	// Hide *os.File's WriterTo, which would ignore buf.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
