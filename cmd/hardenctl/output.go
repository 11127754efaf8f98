package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"golang.org/x/term"
)

// terminal reports whether f is a terminal that gets colour (NO_COLOR,
// https://no-color.org, and TERM=dumb turn it off) and its width.
func terminal(f *os.File) (color bool, width int) {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return false, 0
	}
	if w, _, err := term.GetSize(fd); err == nil {
		width = w
	}
	return os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb", width
}

// Colours as SGR parameters. Every one is two characters, so that a
// coloured cell is as long as a plain one and tabwriter, which counts the
// escape sequences as text, still aligns the columns.
const (
	plain  = "39" // default foreground
	bold   = "01"
	red    = "31"
	green  = "32"
	yellow = "33"
	cyan   = "36"
	dim    = "02"
)

const reset = "\x1b[0m"

// paint colours s for a terminal; with colour off it returns s.
func paint(on bool, color, s string) string {
	if !on || color == "" {
		return s
	}
	return "\x1b[" + color + "m" + s + reset
}

// cell is one table cell and its colour ("" for none).
type cell struct {
	text  string
	color string
}

// table aligns rows with text/tabwriter. With colour on, every cell but a
// row's last is wrapped in an escape sequence of the same length (plain
// cells in the default colour), so the columns stay aligned.
type table struct {
	w      io.Writer
	buf    bytes.Buffer
	tw     *tabwriter.Writer
	color  bool
	indent string
}

func newTable(w io.Writer, color bool, indent int) *table {
	t := &table{w: w, color: color, indent: strings.Repeat(" ", indent)}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

// row adds plain cells.
func (t *table) row(cells ...string) {
	cs := make([]cell, len(cells))
	for i, s := range cells {
		cs[i] = cell{text: s}
	}
	t.cells(cs...)
}

// colored adds a row in one colour.
func (t *table) colored(color string, cells ...string) {
	cs := make([]cell, len(cells))
	for i, s := range cells {
		cs[i] = cell{text: s, color: color}
	}
	t.cells(cs...)
}

// cells adds a row of individually coloured cells.
func (t *table) cells(cs ...cell) {
	var b strings.Builder
	b.WriteString(t.indent)
	for i, c := range cs {
		text := strings.NewReplacer("\t", " ", "\n", " ").Replace(c.text)
		last := i == len(cs)-1
		switch {
		case !t.color:
			b.WriteString(text)
		case last:
			b.WriteString(paint(true, c.color, text))
		default:
			color := c.color
			if color == "" {
				color = plain
			}
			b.WriteString(paint(true, color, text))
		}
		if !last {
			b.WriteByte('\t')
		}
	}
	b.WriteByte('\n')
	fmt.Fprint(t.tw, b.String())
}

// flush writes the aligned rows without the padding an empty last cell
// leaves at the end of a line.
func (t *table) flush() {
	t.tw.Flush()
	for _, line := range strings.SplitAfter(t.buf.String(), "\n") {
		if line == "" {
			continue
		}
		fmt.Fprintln(t.w, strings.TrimRight(line, " \n"))
	}
	t.buf.Reset()
}

// heading prints a section title.
func heading(w io.Writer, color bool, title string) {
	fmt.Fprintln(w, paint(color, bold, title))
}

// writeJSON prints v as indented JSON with stable field names (the structs'
// JSON tags) and without HTML escaping, so "->" and "<stdin>" stay readable.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}

// maxValue is how many characters of a list a table cell shows, and
// maxString of a string; --json has the full value.
const (
	maxValue  = 72
	maxString = 80
)

// formatValue renders a change's value for one table cell: lists of strings
// as "a, b, c", long lists cut with a count of what is left out.
func formatValue(v any) string { return formatValueIn(v, maxValue, maxString) }

// formatValueIn is formatValue with lists cut at list characters and
// strings at str.
func formatValueIn(v any, list, str int) string {
	switch x := v.(type) {
	case nil:
		return "(unset)"
	case string:
		return truncate(x, str)
	case []string:
		return joinShort(x, list)
	case []any:
		ss := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return truncate(compactJSON(v), list)
			}
			ss = append(ss, s)
		}
		return joinShort(ss, list)
	}
	return truncate(compactJSON(v), list)
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// joinShort joins items with ", " up to about max characters and says how
// many it left out.
func joinShort(items []string, width int) string {
	if len(items) == 0 {
		return "(none)"
	}
	if full := strings.Join(items, ", "); utf8.RuneCountInString(full) <= width {
		return full
	}
	b := truncate(items[0], width)
	for i := 1; i < len(items); i++ {
		cand := b + ", " + items[i]
		more := func(n int) string { return fmt.Sprintf(", ... (+%d more)", n) }
		limit := width - len(more(len(items)-i-1))
		if i == len(items)-1 {
			// The last item is shown where saying it was left out
			// would fit.
			limit = width + len(more(1))
		}
		if utf8.RuneCountInString(cand) > limit {
			return b + more(len(items)-i)
		}
		b = cand
	}
	return b
}

func truncate(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:max(width-3, 0)]) + "..."
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
