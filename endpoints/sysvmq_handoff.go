package endpoints

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ipcchan/go/ipcchan/transport"
)

// A SysV queue end has no descriptor to hand down: [Attach] puts its
// identifier, message type and flags in IPCCHAN_FILES instead, as
// "name=sysvmq:ID:TYPE:FLAGS" (FLAGS: "e" for MsgSelect.Except, "t" for
// Truncate), and the child's InheritSender or InheritReceiver opens it.
const sysvEntryPrefix = "sysvmq:"

type sysvEntry struct {
	id  int
	sel MsgSelect
}

func parseSysVEntry(v string) (sysvEntry, error) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return sysvEntry{}, fmt.Errorf("want ID:TYPE:FLAGS")
	}
	id, err1 := strconv.Atoi(parts[0])
	typ, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || id < 0 || strings.Trim(parts[2], "et") != "" {
		return sysvEntry{}, fmt.Errorf("want ID:TYPE:FLAGS")
	}
	return sysvEntry{id: id, sel: MsgSelect{
		Type:     typ,
		Except:   strings.Contains(parts[2], "e"),
		Truncate: strings.Contains(parts[2], "t"),
	}}, nil
}

// sysvEntryOf returns the IPCCHAN_FILES value for end if it is a SysV
// queue end.
func sysvEntryOf(end Passable) (string, bool) {
	var t *sysvTransport
	switch e := end.(type) {
	case interface{ Transport() transport.MsgSender }:
		t, _ = e.Transport().(*sysvTransport)
	case interface{ Transport() transport.MsgReceiver }:
		t, _ = e.Transport().(*sysvTransport)
	}
	if t == nil {
		return "", false
	}
	typ, flags := t.sel.Type, ""
	if t.sending {
		typ = int64(t.tag)
	}
	if t.sel.Except {
		flags += "e"
	}
	if t.sel.Truncate {
		flags += "t"
	}
	return fmt.Sprintf("%s%d:%d:%s", sysvEntryPrefix, t.q.id, typ, flags), true
}

// inheritedSysV returns the SysV queue entry handed down under name, if
// that is what name is, and claims it.
func inheritedSysV(name string) (e sysvEntry, ok bool, err error) {
	v, set := os.LookupEnv(EnvFiles)
	if !set {
		return e, false, nil
	}
	entries, perr := parseEntries(v)
	if perr != nil {
		return e, false, nil // claimInherited reports it
	}
	val, isQueue := strings.CutPrefix(entries[name], sysvEntryPrefix)
	if !isQueue {
		return e, false, nil
	}
	inherited.Lock()
	defer inherited.Unlock()
	if inherited.claimed[name] {
		return e, true, fmt.Errorf("ipcchan: inherit %q: %w: already inherited by this process", name, ErrNotInherited)
	}
	if inherited.claimed == nil {
		inherited.claimed = map[string]bool{}
	}
	inherited.claimed[name] = true
	e, err = parseSysVEntry(val)
	return e, true, err
}
