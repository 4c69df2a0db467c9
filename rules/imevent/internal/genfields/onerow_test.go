package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The fake command of TestAddingACommandIsOneRow: a before-callback (Prev)
// whose events are the elements of a list no other command uses, so that
// every derived piece (constant, Commands, Lists, CommandIndex, IsPrev,
// both decoders' list and key switches) has to change.
const (
	fakeRow = `	{Name: "Sns.CallbackFakeThing", Const: "CmdFakeThing", List: "FakeList", Prev: true,
		Doc: "https://example.com/fake-thing"},
`
	// Its own fields: one on the body's top level, one on the list's
	// elements. The rows with all(...) or prevCmds() (To_Account,
	// From_Account, Remark...) take it in with no edit.
	fakeFields = `	{Name: "FakeLevel", Type: "int", From: on(FromBody, "Sns.CallbackFakeThing"), Doc: "A level only the fake command has."},
	{Name: "FakeNote", Type: "string", From: on(FromElem, "Sns.CallbackFakeThing"), Doc: "A note only the fake command has."},
`
	// fakeTest runs in engine/imcallback of the copy, against the code
	// go generate wrote there and in rules/imevent.
	fakeTest = `package imcallback

import (
	"slices"
	"testing"

	"github.com/friendflow/friendflow/rules/imevent"
)

func TestFakeCommand(t *testing.T) {
	const cmd = "Sns.CallbackFakeThing"
	if imevent.CmdFakeThing != cmd {
		t.Errorf("CmdFakeThing = %q", imevent.CmdFakeThing)
	}
	if !slices.Contains(imevent.Commands, cmd) || !imevent.IsCommand(cmd) {
		t.Errorf("Commands %v lacks %s", imevent.Commands, cmd)
	}
	if i, ok := imevent.CommandIndex(cmd); !ok || i != imevent.NumCommands-1 {
		t.Errorf("CommandIndex = %d, %v; want %d (the last row)", i, ok, imevent.NumCommands-1)
	}
	if !imevent.IsPrev(cmd) {
		t.Error("IsPrev is false")
	}
	if imevent.Lists[cmd] != "FakeList" {
		t.Errorf("Lists[%s] = %q", cmd, imevent.Lists[cmd])
	}
	data := []byte(` + "`" + `{"CallbackCommand":"Sns.CallbackFakeThing","EventTime":1764115200000,"From_Account":"alice",` +
		`"Requester_Account":"alice","FakeLevel":7,"FakeList":[{"To_Account":"bob","Remark":"hi","FakeNote":"n1"},{"To_Account":"carol","FakeNote":"n2"}]}` + "`" + `)
	var fast body
	if !fast.decodeFast(data) {
		t.Error("decodeFast refuses the fake command's body")
	}
	cb := &Callback{Command: cmd, SdkAppid: 1400000000}
	if err := Decode(data, cb); err != nil {
		t.Fatal(err)
	}
	var slow body
	if err := unmarshalBody(data, &slow); err != nil {
		t.Fatal(err)
	}
	slowCB := &Callback{Command: cmd, SdkAppid: 1400000000}
	if err := slow.events(slowCB, DefaultMaxPairs); err != nil {
		t.Fatal(err)
	}
	if len(cb.Events) != 2 || len(slowCB.Events) != 2 {
		t.Fatalf("events: fast %+v, slow %+v", cb.Events, slowCB.Events)
	}
	for i, want := range []imevent.Event{
		{CallbackCommand: cmd, SdkAppid: 1400000000, EventTime: 1764115200000, From_Account: "alice", Requester_Account: "alice",
			To_Account: "bob", Remark: "hi", FakeLevel: 7, FakeNote: "n1", PairIndex: 0, PairCount: 2},
		{CallbackCommand: cmd, SdkAppid: 1400000000, EventTime: 1764115200000, From_Account: "alice", Requester_Account: "alice",
			To_Account: "carol", FakeLevel: 7, FakeNote: "n2", PairIndex: 1, PairCount: 2},
	} {
		if cb.Events[i] != want || slowCB.Events[i] != want {
			t.Errorf("event %d:\n fast %+v\n slow %+v\n want %+v", i, cb.Events[i], slowCB.Events[i], want)
		}
	}
}
`
)

// TestAddingACommandIsOneRow proves the claim of docs/architecture.md: a
// new callback command is one row of CommandTable plus its fields' rows,
// then go generate. It copies the module, adds fakeRow and fakeFields to
// the copy's tables, runs the copy's go generate for rules/imevent (this
// generator, on every file it writes), builds the packages that use the
// generated code and runs fakeTest there.
func TestAddingACommandIsOneRow(t *testing.T) {
	if testing.Short() {
		t.Skip("copies the module and runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	root := moduleCopy(t)
	imevent := filepath.Join(root, "rules", "imevent")
	insertBefore(t, filepath.Join(imevent, "commands.go"), "var CommandTable = []Command{", "\n}\n", fakeRow)
	insertBefore(t, filepath.Join(imevent, "fields.go"), "var Fields = []Field{", "\t{Name: \"PairIndex\"", fakeFields)
	if err := os.WriteFile(filepath.Join(root, "engine", "imcallback", "zz_fake_command_test.go"), []byte(fakeTest), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(goCmd, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(imevent, "generate", ".")
	gen, err := os.ReadFile(filepath.Join(imevent, "imevent_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(gen, []byte(`CmdFakeThing`)) {
		t.Fatal("imevent_gen.go has no CmdFakeThing")
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "rules.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Sns.CallbackFakeThing", "FakeNote", "FakeLevel"} {
		if !bytes.Contains(doc, []byte(s)) {
			t.Errorf("docs/rules.md does not mention %s", s)
		}
	}
	run(root, "build", "./rules/...", "./engine/imcallback/")
	run(root, "test", "-count=1", "-run", "^TestFakeCommand$", "./engine/imcallback/")
}

// moduleCopy copies the module this package is part of, less its dot
// directories (.git) and bin, to a temporary directory.
func moduleCopy(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		t.Fatalf("no module root at %s: %v", src, err)
	}
	dst := t.TempDir()
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bin") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// insertBefore inserts text into the file at the first occurrence of
// marker after the first of after.
func insertBefore(t *testing.T, file, after, marker, text string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, after)
	if start < 0 {
		t.Fatalf("%s: no %q", file, after)
	}
	i := strings.Index(s[start:], marker)
	if i < 0 {
		t.Fatalf("%s: no %q after %q", file, marker, after)
	}
	i += start
	if marker == "\n}\n" {
		i++ // after the last row's newline
	}
	s = s[:i] + text + s[i:]
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
