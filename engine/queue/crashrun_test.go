package queue

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/friendflow/friendflow/actions"
)

const (
	crashRunDirEnv = "FRIENDFLOW_QUEUE_CRASHRUN_DIR"
	// crashRunCallbacksEnv raises the number of callbacks acknowledged
	// before the kill (default 2000): 10000 for the load target's run.
	crashRunCallbacksEnv = "FRIENDFLOW_QUEUE_CRASHRUN_CALLBACKS"
)

// appendKind is the child's "script" kind: it appends each job's id to a
// file, a line per run, which outlives the process (the page cache
// survives SIGKILL).
type appendKind struct {
	mu sync.Mutex
	f  *os.File
}

func (a *appendKind) Spec() actions.Spec { return newScript().Spec() }

func (a *appendKind) Do(_ context.Context, job actions.Job, _ map[string]any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err := a.f.WriteString(job.ID + "\n")
	return err
}

// TestCrashRunChild is the process TestKill9WhileWorkersRunLosesNoJob
// kills: it enqueues callbacks while its workers run them, printing each
// acknowledged callback and appending each job run to a file.
func TestCrashRunChild(t *testing.T) {
	dir := os.Getenv(crashRunDirEnv)
	if dir == "" {
		t.Skip("helper process of TestKill9WhileWorkersRunLosesNoJob")
	}
	f, err := os.OpenFile(filepath.Join(dir, "runs"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Println("runs file:", err)
		os.Exit(1)
	}
	reg := &actions.Registry{}
	if err := reg.Register(&appendKind{f: f}); err != nil {
		fmt.Println("register:", err)
		os.Exit(1)
	}
	q, err := Open(context.Background(), Config{DataDir: filepath.Join(dir, "store"), Registry: reg, Workers: 4})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	go func() { _ = q.Run(context.Background()) }()
	for i := 0; ; i++ {
		cb := "cb" + strconv.Itoa(i)
		if err := q.Enqueue(context.Background(), cb, []Job{mkJob(cb+"-0", "ok"), mkJob(cb+"-1", "ok"), mkJob(cb+"-2", "ok")}); err != nil {
			fmt.Println("enqueue:", err)
			os.Exit(1)
		}
		fmt.Println("acked", i)
	}
}

// TestKill9WhileWorkersRunLosesNoJob: SIGKILL while callbacks are stored
// and workers take, run and acknowledge them (the stream's blocks hold
// deleted messages and tombstones at that moment); after a
// restart on the same store every acknowledged callback's jobs have run,
// before the kill or after.
func TestKill9WhileWorkersRunLosesNoJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	killAt := 2000
	if v := os.Getenv(crashRunCallbacksEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashRunCallbacksEnv, v)
		}
		killAt = n
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRunChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashRunDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	last := killAfter(t, cmd, out, killAt)
	before := runsBefore(t, filepath.Join(dir, "runs"))
	s := newScript()
	q := openTest(t, filepath.Join(dir, "store"), s, nil)
	runTest(t, q)
	missing := func() (n int, first string) {
		for i := 0; i <= last; i++ {
			for j := range 3 {
				id := fmt.Sprintf("cb%d-%d", i, j)
				if !before[id] && s.doneCount(id) == 0 {
					if n == 0 {
						first = id
					}
					n++
				}
			}
		}
		return n, first
	}
	deadline := time.Now().Add(60 * time.Second)
	for n, first := missing(); n > 0; n, first = missing() {
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged jobs never ran (first: %s)", n, first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, 20*time.Second, "queue drained", func() bool { return drained(t, q) })
	_, after := s.doneTotals()
	t.Logf("%d callbacks acknowledged when killed: %d jobs ran before the kill, %d after (reruns included)", last+1, len(before), after)
}

// killAfter reads the child's output and kills it with SIGKILL once n
// callbacks are acknowledged; it returns the last one acknowledged.
func killAfter(t *testing.T, cmd *exec.Cmd, out io.Reader, n int) int {
	t.Helper()
	last, killed := -1, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "acked "); ok {
			last, _ = strconv.Atoi(v)
			if last+1 == n && !killed {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL, mid-stream
					t.Fatal(err)
				}
				killed = true
			}
			continue
		}
		t.Log("child:", line)
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed (last ack %d)", last)
	}
	return last
}

// runsBefore reads the child's runs file: the ids of the jobs it ran.
func runsBefore(t *testing.T, file string) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	runs := make(map[string]bool)
	for l := range strings.Lines(string(raw)) {
		if id, ok := strings.CutSuffix(l, "\n"); ok { // a line cut by the kill is not a run
			runs[id] = true
		}
	}
	return runs
}
