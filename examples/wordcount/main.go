// Command wordcount counts the words of a text file, or of a built-in text
// when no file is given, on an embedded local Flink cluster, and prints one
// "word count" line per word.
//
//	go run ./examples/wordcount [file]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/flinkgo/flink"
)

const text = `To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles
And by opposing end them. To die—to sleep,
No more; and by a sleep to say we end
The heart-ache and the thousand natural shocks
That flesh is heir to: 'tis a consummation
Devoutly to be wish'd. To die, to sleep;
To sleep, perchance to dream—ay, there's the rub:
For in that sleep of death what dreams may come,
When we have shuffled off this mortal coil,
Must give us pause.`

// WordCount is a word and how often it was seen.
type WordCount struct {
	Word  string
	Count int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, args []string) error {
	env := flink.NewEnv(flink.WithName("wordcount"))
	var lines *flink.DataStream[string]
	if len(args) > 0 {
		lines = flink.ReadLines(env, args...)
	} else {
		lines = flink.FromSlice(env, strings.Split(text, "\n"))
	}
	totals := &totals{counts: make(map[string]int)}
	flink.SinkTo(Counts(lines), "totals", flink.SinkFunc(totals.add))
	if _, err := env.Execute(ctx); err != nil {
		return err
	}
	words := make([]string, 0, len(totals.counts))
	for w := range totals.counts {
		words = append(words, w)
	}
	sort.Strings(words)
	for _, word := range words {
		fmt.Fprintln(w, word, totals.counts[word])
	}
	return nil
}

// totals keeps the latest running count of each word: the rolling counts
// end with each word's total.
type totals struct {
	mu     sync.Mutex
	counts map[string]int
}

func (t *totals) add(wc WordCount) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[wc.Word] = max(t.counts[wc.Word], wc.Count)
	return nil
}

// Counts splits lines into lower-case words and keeps a running count per
// word.
func Counts(lines *flink.DataStream[string]) *flink.DataStream[WordCount] {
	words := flink.FlatMap(lines, func(line string, out flink.Collector[WordCount]) error {
		for _, w := range tokenize(line) {
			out.Collect(WordCount{Word: w, Count: 1})
		}
		return nil
	}).Name("tokenize")
	keyed := flink.KeyBy(words, func(wc WordCount) string { return wc.Word })
	return flink.Reduce(keyed, func(a, b WordCount) (WordCount, error) {
		return WordCount{Word: a.Word, Count: a.Count + b.Count}, nil
	}).Name("count")
}

// tokenize splits a line into lower-case words as Flink's WordCount does
// (line.toLowerCase().split("\\W+")): a word is a run of letters, digits
// and underscores, so "w0 w1" holds the words "w0" and "w1", and "wish'd"
// the words "wish" and "d". Unlike Java's \W, the letters and digits of
// every script count, not only ASCII's.
func tokenize(line string) []string {
	return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
	})
}
