package runcwrap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/harden-dev/harden/node"
)

// logger writes what harden-runc has to say the way runc does (logrus, as
// configured by runc's --log and --log-format): one line per message, JSON
// {"level","msg","time"} or logfmt text, to the --log file, or to stderr
// when there is none. Engines read runc's errors from that file: the runc
// shim shows the msg of the last "level":"error" line of <bundle>/log.json.
// Nothing ever goes to stdout, which engines parse (state, ps, features).
type logger struct {
	path   string // --log; "" is stderr
	json   bool   // --log-format json
	debug  bool   // --debug: log each decision too
	stderr io.Writer
	now    func() time.Time
}

func newLogger(inv *Invocation, stderr io.Writer, now func() time.Time) *logger {
	l := &logger{stderr: stderr, now: now}
	if inv != nil {
		l.path, _ = inv.GlobalValue("log")
		format, _ := inv.GlobalValue("log-format")
		l.json = format == "json"
		l.debug = inv.globalBool("debug")
	}
	return l
}

// line formats one entry as logrus's JSONFormatter (keys sorted) or
// TextFormatter (without colours, as when the output is not a terminal).
func (l *logger) line(level, msg string) []byte {
	ts := l.now().Format(time.RFC3339)
	if l.json {
		b, _ := json.Marshal(struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Time  string `json:"time"`
		}{level, msg, ts})
		return append(b, '\n')
	}
	return fmt.Appendf(nil, "time=%q level=%s msg=%q\n", ts, level, msg)
}

// log writes one entry. A --log file that cannot be opened falls back to
// stderr: the message must reach someone.
func (l *logger) log(level, msg string) {
	b := l.line(level, msg)
	if l.path != "" {
		// runc opens its log the same way (main.go configLogrus).
		f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err == nil {
			_, err = f.Write(b)
			f.Close()
			if err == nil {
				return
			}
		}
	}
	_, _ = l.stderr.Write(b)
}

// fail reports err as runc's fatal() does (the log entry, and the bare
// message on stderr when the log is a file) and returns runc's exit code.
func (l *logger) fail(err error) int { return l.failWithCode(err, 1) }

// failWithCode is fail with runc's fatalWithCode exit code.
func (l *logger) failWithCode(err error, code int) int {
	l.log("error", err.Error())
	if l.path != "" {
		fmt.Fprintln(l.stderr, err)
	}
	return code
}

// decision logs a decision at debug level, with --debug only: runc logs
// nothing on success either. The decision log has the full record.
func (l *logger) decision(rec node.Record) {
	if !l.debug {
		return
	}
	msg := fmt.Sprintf("harden: %s %s: %s", rec.Event, rec.ID, rec.Result)
	if o := rec.Outcome; o != nil {
		msg += fmt.Sprintf(" (rule %q, profile %q, %s, %d changes, runtime %s)", o.Decision.Rule, o.Decision.Profile, o.Decision.Mode, len(o.Changes), rec.Runtime)
	}
	l.log("debug", msg)
}
