package main

import (
	"strings"
	"testing"

	"github.com/harden-dev/harden/spec"
)

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestDiffLinesRebuilds checks the edit script both ways: the kept and
// deleted lines are a, the kept and inserted lines are b, and no shorter
// script exists than the LCS gives.
func TestDiffLinesRebuilds(t *testing.T) {
	tests := []struct {
		a, b  string
		edits int // lines deleted plus inserted
	}{
		{"", "", 0},
		{"a", "a", 0},
		{"", "a\nb", 2},
		{"a\nb", "", 2},
		{"a\nb\nc", "a\nc", 1},
		{"a\nc", "a\nb\nc", 1},
		{"a\nb\nc\nd", "a\nx\nc\ny", 4},
		{"x\na\nb\nc", "a\nb\nc\nx", 2},
		{"1\n2\n3\n4\n5\n6", "1\n3\n2\n4\n6\n5", 4},
	}
	for _, tc := range tests {
		a, b := lines(tc.a), lines(tc.b)
		es := diffLines(a, b)
		var ra, rb []string
		n := 0
		for _, e := range es {
			switch e.kind {
			case same:
				ra, rb = append(ra, e.text), append(rb, e.text)
			case del:
				ra = append(ra, e.text)
				n++
			case ins:
				rb = append(rb, e.text)
				n++
			}
		}
		if strings.Join(ra, "\n") != tc.a || strings.Join(rb, "\n") != tc.b {
			t.Errorf("%q -> %q: edits rebuild %q -> %q", tc.a, tc.b, ra, rb)
		}
		if n != tc.edits {
			t.Errorf("%q -> %q: %d edited lines, want %d", tc.a, tc.b, n, tc.edits)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := lines("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15")
	b := lines("1\n2\n3\nfour\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16")
	got := unifiedDiff("a", "b", a, b, 3)
	want := `--- a
+++ b
@@ -1,7 +1,7 @@
 1
 2
 3
-4
+four
 5
 6
 7
@@ -13,3 +13,4 @@
 13
 14
 15
+16
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Changes within twice the context share one hunk.
	b2 := lines("1\n2\n3\nfour\n5\n6\n7\n8\nnine\n10\n11\n12\n13\n14\n15")
	if got := unifiedDiff("a", "b", a, b2, 3); strings.Count(got, "@@ ") != 1 {
		t.Errorf("want one hunk:\n%s", got)
	}
	if got := unifiedDiff("a", "b", a, a, 3); got != "" {
		t.Errorf("equal inputs give %q", got)
	}
	// An insertion into an empty file starts at line 0 on the old side.
	if got := unifiedDiff("a", "b", nil, []string{"x"}, 3); !strings.Contains(got, "@@ -0,0 +1 @@") {
		t.Errorf("insertion into nothing:\n%s", got)
	}
}

func TestJoinShort(t *testing.T) {
	tests := []struct {
		items []string
		width int
		want  string
	}{
		{nil, 20, "(none)"},
		{[]string{"a", "b"}, 20, "a, b"},
		{[]string{"aaaa", "bbbb", "cccc", "dddd", "eeee", "ffff"}, 30, "aaaa, bbbb, ... (+4 more)"},
		{[]string{"aaaa", "bbbb", "cccc", "dddd"}, 20, "aaaa, ... (+3 more)"},
		// The last item is shown where ", ... (+1 more)" would fit.
		{[]string{"a", "b", "cccccccccccccccccc"}, 20, "a, b, cccccccccccccccccc"},
	}
	for _, tc := range tests {
		if got := joinShort(tc.items, tc.width); got != tc.want {
			t.Errorf("joinShort(%q, %d) = %q, want %q", tc.items, tc.width, got, tc.want)
		}
	}
}

// TestTableAlignsColour checks that coloured cells do not shift columns:
// tabwriter counts escape sequences as text, so every cell but the last
// carries one of the same length.
func TestTableAlignsColour(t *testing.T) {
	var plainOut, colorOut strings.Builder
	for _, tc := range []struct {
		out   *strings.Builder
		color bool
	}{{&plainOut, false}, {&colorOut, true}} {
		tb := newTable(tc.out, tc.color, 2)
		tb.colored(bold, "RULE", "OP", "PATH")
		tb.cells(cell{text: "caps.drop"}, cell{text: "remove", color: yellow}, cell{text: "process.capabilities"})
		tb.cells(cell{text: "x"}, cell{text: "set", color: cyan}, cell{text: ""})
		tb.flush()
	}
	stripped := stripANSI(colorOut.String())
	if stripped != plainOut.String() {
		t.Errorf("coloured table, escapes removed:\n%s\nplain table:\n%s", stripped, plainOut.String())
	}
	if strings.Contains(plainOut.String(), " \n") {
		t.Errorf("trailing spaces:\n%q", plainOut.String())
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestGroupChanges(t *testing.T) {
	cs := groupChanges([]spec.Change{
		{Rule: "caps.drop", Path: "process.capabilities.bounding", Op: spec.OpRemove, Before: []string{"CAP_NET_RAW"}, Reason: "r"},
		{Rule: "caps.drop", Path: "process.capabilities.effective", Op: spec.OpRemove, Before: []string{"CAP_NET_RAW"}, Reason: "r"},
		{Rule: "caps.drop", Path: "process.capabilities.ambient", Op: spec.OpRemove, Before: []string{"CAP_KILL"}, Reason: "r"},
		{Rule: "user.non-root", Path: "process.user.uid", Op: spec.OpRefuse},
		{Rule: "process.no-new-privileges", Path: "process.noNewPrivileges", Op: spec.OpSet, Before: false, After: true},
	})
	var paths []string
	for _, c := range cs {
		paths = append(paths, c.Path)
	}
	want := []string{"process.capabilities.{bounding,effective}", "process.capabilities.ambient", "process.noNewPrivileges"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("grouped paths %q, want %q", paths, want)
	}
}
