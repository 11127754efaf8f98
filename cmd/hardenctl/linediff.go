package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// editKind is one line of a line diff.
type editKind byte

const (
	same editKind = ' '
	del  editKind = '-'
	ins  editKind = '+'
)

type edit struct {
	kind editKind
	text string
}

// maxLCSCells bounds the LCS table (lines before x lines after, once the
// common head and tail are cut). Specs are at most a few thousand lines, and
// hardening edits them in a few places; past the bound the middle is shown
// as replaced wholesale rather than using gigabytes of memory.
const maxLCSCells = 16 << 20

// diffLines computes a shortest edit script from a to b with the classic
// longest-common-subsequence table, after trimming the common head and
// tail (which is most of a spec).
func diffLines(a, b []string) []edit {
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	var out []edit
	for _, l := range a[:head] {
		out = append(out, edit{same, l})
	}
	out = append(out, lcsEdits(a[head:len(a)-tail], b[head:len(b)-tail])...)
	for _, l := range a[len(a)-tail:] {
		out = append(out, edit{same, l})
	}
	return out
}

func lcsEdits(a, b []string) []edit {
	n, m := len(a), len(b)
	var out []edit
	if n*m > maxLCSCells {
		for _, l := range a {
			out = append(out, edit{del, l})
		}
		for _, l := range b {
			out = append(out, edit{ins, l})
		}
		return out
	}
	// l[i][j] is the LCS length of a[i:] and b[j:].
	l := make([][]int32, n+1)
	for i := range l {
		l[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			out = append(out, edit{same, a[i]})
			i++
			j++
		case l[i+1][j] >= l[i][j+1]:
			out = append(out, edit{del, a[i]})
			i++
		default:
			out = append(out, edit{ins, b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, edit{del, a[i]})
	}
	for ; j < m; j++ {
		out = append(out, edit{ins, b[j]})
	}
	return out
}

// unifiedDiff renders the edits from a to b as a unified diff with context
// lines of context around each change. It returns "" when a equals b.
func unifiedDiff(nameA, nameB string, a, b []string, context int) string {
	edits := diffLines(a, b)
	// Find the changed edit indexes and group them into hunks.
	var sb strings.Builder
	first := true
	for start := 0; start < len(edits); {
		// Next change.
		k := start
		for k < len(edits) && edits[k].kind == same {
			k++
		}
		if k == len(edits) {
			break
		}
		lo := max(k-context, start)
		// Extend while the next change is within 2*context lines.
		hi := k
		for {
			for hi < len(edits) && edits[hi].kind != same {
				hi++
			}
			next := hi
			for next < len(edits) && edits[next].kind == same {
				next++
			}
			if next == len(edits) || next-hi > 2*context {
				break
			}
			hi = next
		}
		end := min(hi+context, len(edits))
		if first {
			fmt.Fprintf(&sb, "--- %s\n+++ %s\n", nameA, nameB)
			first = false
		}
		// Line numbers of the hunk's first line in a and b.
		la, lb := 1, 1
		for _, e := range edits[:lo] {
			if e.kind != ins {
				la++
			}
			if e.kind != del {
				lb++
			}
		}
		na, nb := 0, 0
		for _, e := range edits[lo:end] {
			if e.kind != ins {
				na++
			}
			if e.kind != del {
				nb++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(la, na), hunkRange(lb, nb))
		for _, e := range edits[lo:end] {
			sb.WriteByte(byte(e.kind))
			sb.WriteString(e.text)
			sb.WriteByte('\n')
		}
		start = end
	}
	return sb.String()
}

// hunkRange is "start,count" as diff -u prints it (start is the line before
// an empty range).
func hunkRange(start, count int) string {
	if count == 0 {
		start--
	}
	if count == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, count)
}

// jsonLines indents a JSON document, one value per line, for diffing.
func jsonLines(compact []byte) ([]string, error) {
	var b bytes.Buffer
	if err := json.Indent(&b, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("indent json: %w", err)
	}
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n"), nil
}

// jsonPatch is the unified diff of two JSON documents.
func jsonPatch(nameA, nameB string, before, after []byte) (string, error) {
	a, err := jsonLines(before)
	if err != nil {
		return "", err
	}
	b, err := jsonLines(after)
	if err != nil {
		return "", err
	}
	return unifiedDiff(nameA, nameB, a, b, 3), nil
}

// foldAt is the length of an added or removed JSON value that the report
// folds: a seccomp filter is hundreds of lines that hide the few edits a
// reader looks for. --output=patch and --json print every line.
const (
	foldAt   = 40
	foldKeep = 12
)

// printPatch prints a unified diff, coloured on a terminal; with fold, a
// long added or removed JSON value is cut to its first lines and its last.
func printPatch(c *cli, patch string, fold bool) {
	lines := strings.Split(strings.TrimSuffix(patch, "\n"), "\n")
	for i := 0; i < len(lines); {
		if !fold || !isEdit(lines[i]) {
			printPatchLine(c, lines[i])
			i++
			continue
		}
		run := i
		for run < len(lines) && isEdit(lines[run]) && lines[run][0] == lines[i][0] {
			run++
		}
		for _, block := range jsonBlocks(lines[i:run]) {
			if len(block) < foldAt {
				for _, l := range block {
					printPatchLine(c, l)
				}
				continue
			}
			for _, l := range block[:foldKeep] {
				printPatchLine(c, l)
			}
			printPatchLine(c, fmt.Sprintf("%c ... %d more lines (hardenctl diff --output=patch prints them)", block[0][0], len(block)-foldKeep-1))
			printPatchLine(c, block[len(block)-1])
		}
		i = run
	}
}

// jsonBlocks splits a run of added (or removed) lines of indented JSON into
// the values it adds: a block starts at each line as little indented as the
// least indented line of the run.
func jsonBlocks(run []string) [][]string {
	indent := func(l string) int { return len(l) - 1 - len(strings.TrimLeft(l[1:], " ")) }
	least := indent(run[0])
	for _, l := range run {
		least = min(least, indent(l))
	}
	var blocks [][]string
	for _, l := range run {
		if len(blocks) == 0 || indent(l) == least && !isCloser(l) {
			blocks = append(blocks, nil)
		}
		blocks[len(blocks)-1] = append(blocks[len(blocks)-1], l)
	}
	return blocks
}

// isCloser is a line that ends an object or array.
func isCloser(l string) bool {
	t := strings.TrimSpace(l[1:])
	return strings.HasPrefix(t, "}") || strings.HasPrefix(t, "]")
}

func isEdit(line string) bool {
	return line != "" && (line[0] == '+' || line[0] == '-') && !strings.HasPrefix(line, "+++") && !strings.HasPrefix(line, "---")
}

func printPatchLine(c *cli, line string) {
	color := ""
	switch {
	case strings.HasPrefix(line, "---"), strings.HasPrefix(line, "+++"):
		color = bold
	case strings.HasPrefix(line, "@@"):
		color = cyan
	case strings.HasPrefix(line, "-"):
		color = red
	case strings.HasPrefix(line, "+"):
		color = green
	}
	fmt.Fprintln(c.stdout, paint(c.color, color, line))
}
