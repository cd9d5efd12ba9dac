package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// exactness is the comparison of the committed output with the running
// counts of the records [0, end) keyed i % keys.
type exactness struct {
	End        int64 // records the job was to emit
	Lines      int   // committed lines read
	Missing    int   // expected lines not committed: records lost
	Duplicated int   // extra copies of expected lines
	Unexpected int   // lines that are no expected running count (for example a count past a key's total: a record counted twice)
	InProgress int   // hidden in-progress files left in the output directory
	Examples   []string
}

// exact reports whether nothing was lost, duplicated or unexpected.
func (e exactness) exact() bool { return e.Missing == 0 && e.Duplicated == 0 && e.Unexpected == 0 }

func (e exactness) String() string {
	verdict := "EXACT"
	if !e.exact() {
		verdict = "NOT EXACT"
	}
	s := fmt.Sprintf("%s: %d records, %d committed lines; %d lost, %d duplicated, %d unexpected", verdict, e.End, e.Lines, e.Missing, e.Duplicated, e.Unexpected)
	if e.InProgress > 0 {
		s += fmt.Sprintf(" (%d .inprogress files of aborted transactions left in the output directory)", e.InProgress)
	}
	if len(e.Examples) > 0 {
		s += "; for example: " + strings.Join(e.Examples, ", ")
	}
	return s
}

// checkOutput reads the committed files in dir (those not starting with
// '.') and compares their lines with the running counts "key,count" of
// the records [0, end) keyed i % keys: for every key k, the counts 1..n(k)
// exactly once each.
func checkOutput(dir string, end, keys int64) (exactness, error) {
	e := exactness{End: end}
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return e, fmt.Errorf("chaos: reading the output: %w", err)
	}
	seen := map[[2]int64]int{}
	for _, ent := range entries {
		name := ent.Name()
		if strings.HasPrefix(name, ".") {
			if strings.HasSuffix(name, ".inprogress") {
				e.InProgress++
			}
			continue
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return e, fmt.Errorf("chaos: reading the output: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			e.Lines++
			k, c, ok := parseLine(sc.Text())
			if !ok || k < 0 || k >= keys || c < 1 || c > expectedCount(end, keys, k) {
				e.Unexpected++
				if len(e.Examples) < 5 {
					e.Examples = append(e.Examples, fmt.Sprintf("unexpected %q in %s", sc.Text(), name))
				}
				continue
			}
			seen[[2]int64{k, c}]++
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return e, fmt.Errorf("chaos: reading %s: %w", name, err)
		}
	}
	for k := range keys {
		for c := int64(1); c <= expectedCount(end, keys, k); c++ {
			switch n := seen[[2]int64{k, c}]; {
			case n == 0:
				e.Missing++
				if len(e.Examples) < 5 {
					e.Examples = append(e.Examples, fmt.Sprintf("missing %d,%d", k, c))
				}
			case n > 1:
				e.Duplicated += n - 1
				if len(e.Examples) < 5 {
					e.Examples = append(e.Examples, fmt.Sprintf("%d,%d committed %d times", k, c, n))
				}
			}
		}
	}
	return e, nil
}

// expectedCount is how many of the records [0, end) have key k = i % keys.
func expectedCount(end, keys, k int64) int64 {
	n := end / keys
	if k < end%keys {
		n++
	}
	return n
}

func parseLine(l string) (key, count int64, ok bool) {
	a, b, found := strings.Cut(l, ",")
	if !found {
		return 0, 0, false
	}
	key, err1 := strconv.ParseInt(a, 10, 64)
	count, err2 := strconv.ParseInt(b, 10, 64)
	return key, count, err1 == nil && err2 == nil
}

// election is a JobManager node starting to lead, from its log.
type election struct {
	at   time.Time
	node string
	term uint64
}

var (
	leadingRE = regexp.MustCompile(`msg="leading: JobManager roles started".*\bterm=(\d+)`)
	timeRE    = regexp.MustCompile(`^time=(\S+)`)
)

// elections reads from the JobManager nodes' logs when each started to
// lead, one per term, in order.
func elections(c *cluster) ([]election, error) {
	byTerm := map[uint64]election{}
	for _, n := range c.jms {
		f, err := os.Open(n.log)
		if err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			m := leadingRE.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			term, _ := strconv.ParseUint(m[1], 10, 64)
			var at time.Time
			if t := timeRE.FindStringSubmatch(sc.Text()); t != nil {
				at, _ = time.Parse(time.RFC3339Nano, t[1])
			}
			if _, dup := byTerm[term]; !dup {
				byTerm[term] = election{at: at, node: n.name, term: term}
			}
		}
		f.Close()
	}
	out := make([]election, 0, len(byTerm))
	for _, e := range byTerm {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].term < out[j].term })
	return out, nil
}

// notableMessages are the INFO messages that tell a recovery's steps.
var notableMessages = []string{`msg="job status"`, `msg="restarting job"`, `msg="task manager registered"`, `msg="leading:`, `msg="raft leadership"`}

// notable reports whether a log line tells of a failure or a recovery
// step: WARN and ERROR lines and the notable INFO messages.
func notable(l string) bool {
	if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
		return true
	}
	for _, m := range notableMessages {
		if strings.Contains(l, m) {
			return true
		}
	}
	return false
}

// logLines returns the notable lines the nodes logged between from and
// to, at most max, each prefixed with its node.
func logLines(c *cluster, from, to time.Time, max int) []string {
	var out []string
	for _, n := range c.nodes {
		f, err := os.Open(n.log)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			l := sc.Text()
			if !notable(l) {
				continue
			}
			t := timeRE.FindStringSubmatch(l)
			if t == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, t[1])
			if err != nil || at.Before(from) || at.After(to) {
				continue
			}
			if len(l) > 400 {
				l = l[:400] + "…"
			}
			out = append(out, n.name+": "+l)
		}
		f.Close()
	}
	sort.SliceStable(out, func(i, j int) bool { return lineTime(out[i]) < lineTime(out[j]) })
	if len(out) > max {
		out = append(out[:max], fmt.Sprintf("... and %d more", len(out)-max))
	}
	return out
}

func lineTime(l string) string {
	if i := strings.Index(l, "time="); i >= 0 {
		return l[i:]
	}
	return l
}
