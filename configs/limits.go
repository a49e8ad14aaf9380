package configs

import (
	"fmt"
	"io"
	"os"
	"unicode/utf8"
)

// Bounds on what a config may cost its reader. Init reads the card's
// cairn.yaml as PID 1, so a file that anyone with the card can edit must
// not be able to exhaust the node's memory, nor fill its console.
const (
	// MaxFileBytes is the largest config file read; real ones are a few KiB.
	MaxFileBytes = 1 << 20
	// maxValues bounds the values a document decodes to. An alias (*name)
	// counts its anchor's values again each time it is used, so a small
	// file cannot expand to millions of values.
	maxValues = 100_000
	// maxKeyBytes bounds a key of a mapping of names (sysctl, labels,
	// extraArgs), which becomes part of every path below it.
	maxKeyBytes = 512
	// maxProblems is how many problems one document reports; the rest are
	// counted in one last line.
	maxProblems = 20
	// maxMsgBytes and maxPathBytes bound one problem's text.
	maxMsgBytes, maxPathBytes = 512, 256
)

// ReadFile reads a config file of at most MaxFileBytes; a larger one is a
// Problem (wrapping ErrInvalid), found after reading one byte past the cap.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, tooLarge(path)
	}
	return data, nil
}

func tooLarge(file string) Problems {
	return Problems{{File: file, Msg: fmt.Sprintf("the file is larger than %d MiB, far more than any node config needs; check that this is the right file and remove what it does not need", MaxFileBytes>>20)}}
}

// problemList keeps the first maxProblems problems, clipped, and counts the
// rest, so that a broken file cannot make an error message of any size.
type problemList struct {
	list Problems
	more int
}

// room says whether another problem is kept, counting it when it is not;
// callers ask before they format one.
func (l *problemList) room() bool {
	if len(l.list) < maxProblems {
		return true
	}
	l.more++
	return false
}

func (l *problemList) add(p Problem) { l.list = append(l.list, p.clipped()) }

// done returns the problems kept, with a last line counting the others.
func (l *problemList) done() Problems {
	if l.more == 0 {
		return l.list
	}
	return append(l.list, Problem{File: l.list[0].File, Msg: fmt.Sprintf("%d more problems are not shown; fix the ones above and check again", l.more)})
}

func (p Problem) clipped() Problem {
	p.Path, p.Msg = clip(p.Path, maxPathBytes), clip(p.Msg, maxMsgBytes)
	return p
}

// clip shortens s to about max bytes, keeping its start and its end (where
// a message says what is allowed), and cuts between characters.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	head, tail := max/2, len(s)-max/2
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + " … " + s[tail:]
}
