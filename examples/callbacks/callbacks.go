// Package callbacks holds the sample callback bodies of this directory, as
// Tencent sends them, embedded for tests and examples.
package callbacks

import (
	"embed"
	"io/fs"
)

//go:embed *.json
var samples embed.FS

// Read returns the body of the sample named name, such as
// "friend_add.json".
func Read(name string) ([]byte, error) {
	return samples.ReadFile(name)
}

// Must is Read for a name known to exist, as in a test: it panics if there
// is no such sample.
func Must(name string) []byte {
	b, err := Read(name)
	if err != nil {
		panic(err)
	}
	return b
}

// Names returns the name of every sample, sorted.
func Names() []string {
	names, err := fs.Glob(samples, "*.json")
	if err != nil {
		panic(err) // the pattern is valid
	}
	return names
}
