package runcwrap

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestPassFile(t *testing.T) {
	path, err := passFile("test", []byte(`{"args":["sh"]}`), 150)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := strconv.Atoi(strings.TrimPrefix(path, "/proc/self/fd/"))
	if err != nil || fd < 150 {
		t.Fatalf("path %q: descriptor below 150", path)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	// Opening the path reopens the memfd from the start, as the runtime will.
	for range 2 {
		b, err := os.ReadFile(path)
		if err != nil || string(b) != `{"args":["sh"]}` {
			t.Fatalf("read %s = %q, %v", path, b, err)
		}
	}
	if w, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		_, werr := w.Write([]byte("x"))
		w.Close()
		if werr == nil {
			t.Fatal("the memfd is writable: not sealed")
		}
	}
}

func TestFirstFreeFD(t *testing.T) {
	env := map[string]string{"LISTEN_FDS": "2"}
	if got := firstFreeFD(parse(t, "exec --preserve-fds 0x10 c1 sh"), func(k string) string { return env[k] }); got != 3+16+2 {
		t.Fatalf("firstFreeFD = %d, want 21", got)
	}
	if got := firstFreeFD(parse(t, "exec c1 sh"), func(string) string { return "" }); got != 3 {
		t.Fatalf("firstFreeFD = %d, want 3", got)
	}
}
