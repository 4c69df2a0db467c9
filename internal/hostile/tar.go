// Package hostile builds the hostile inputs of issue 22 that the tests
// and bench/hostile send to friendflow: inputs small on the wire that
// claim to be large.
package hostile

import (
	"bytes"
	"fmt"
)

// SparseTar is a tar archive of about 10 KiB whose one file, x.yaml,
// claims size bytes: a PAX header in GNU sparse format 1.0 declares the
// logical size, and the one stored byte comes after a sparse map that
// makes the rest a hole
// (https://www.gnu.org/software/tar/manual/html_node/Sparse-Formats.html).
// archive/tar's Writer cannot write sparse files, so the blocks are
// written by hand. The tests and bench/hostile share it.
func SparseTar(size int64) []byte {
	var b bytes.Buffer
	pax := ""
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", "x.yaml"}, {"GNU.sparse.realsize", fmt.Sprint(size)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1 // a record's length counts its own digits
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		pax += fmt.Sprint(n) + rec
	}
	b.Write(TarHeader("PaxHeaders/x.yaml", int64(len(pax)), 'x'))
	b.Write(Pad512([]byte(pax)))
	data := append(Pad512(fmt.Appendf(nil, "1\n%d\n1\n", size-1)), Pad512([]byte("r"))...)
	b.Write(TarHeader("GNUSparseFile.0/x.yaml", int64(len(data)), '0'))
	b.Write(data)
	b.Write(make([]byte, 10<<10-b.Len())) // the end-of-archive blocks, and padding
	return b.Bytes()
}

// Pad512 pads p to a whole number of 512-byte tar blocks.
func Pad512(p []byte) []byte { return append(p, make([]byte, (512-len(p)%512)%512)...) }

// TarHeader is a ustar header block for a file of size bytes of type typ
// ('0' a regular file, 'x' PAX records), with its checksum.
func TarHeader(name string, size int64, typ byte) []byte {
	h := make([]byte, 512)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], fmt.Sprintf("%011o\x00", 0))
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	copy(h[148:], "        ") // the checksum counts its own field as spaces
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}
