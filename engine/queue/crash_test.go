package queue

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const crashDirEnv = "FRIENDFLOW_QUEUE_CRASH_DIR"

// TestCrashChild is the process TestKill9LosesNoAcknowledgedJob kills: it
// enqueues callbacks until it dies, printing each acknowledged one.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process of TestKill9LosesNoAcknowledgedJob")
	}
	q, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		cb := "cb" + strconv.Itoa(i)
		if err := q.Enqueue(context.Background(), cb, []Job{mkJob(cb+"-0", "ok"), mkJob(cb+"-1", "ok"), mkJob(cb+"-2", "ok")}); err != nil {
			fmt.Println("enqueue:", err)
			os.Exit(1)
		}
		fmt.Println("acked", i)
	}
}

func TestKill9LosesNoAcknowledgedJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	last := -1
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "acked "); ok {
			last, _ = strconv.Atoi(n)
			if last == 500 && !killed {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL, mid-write
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
	t.Logf("killed after %d acknowledged callbacks", last+1)

	s := newScript()
	q := openTest(t, dir, s, nil)
	runTest(t, q)
	eventually(t, 20*time.Second, "every acknowledged job done", func() bool {
		for i := 0; i <= last; i++ {
			for j := range 3 {
				if s.doneCount(fmt.Sprintf("cb%d-%d", i, j)) == 0 {
					return false
				}
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "queue drained", func() bool { return drained(t, q) })
	distinct, total := s.doneTotals()
	if total != distinct {
		t.Errorf("%d runs for %d jobs: nothing ran before the crash, so each should run once", total, distinct)
	}
	t.Logf("%d jobs recovered (%d acknowledged, the rest stored but unacknowledged at the kill)", distinct, 3*(last+1))
}
