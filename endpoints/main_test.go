package endpoints_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

func TestMain(m *testing.M) {
	ipcchantest.Child(pipeHarness, fifoHarness, unixHarness, tcpHarness, unixgramHarness, unixpacketHarness, udpHarness,
		posixMQHarness, sysvMQHarness, ringHarness, broadcastHarness)
	childMain()       // this package's own re-executed helpers
	runExampleChild() // the children the examples start
	goleak.VerifyTestMain(cleanupAfter{m})
}

// cleanupAfter runs the tests, then removes the kernel objects they made
// that outlive processes.
type cleanupAfter struct{ m *testing.M }

func (c cleanupAfter) Run() int {
	defer removeCPeers()
	reapKilledRuns()
	before := leftoverNames()
	code := c.m.Run()
	removeTestQueues()
	// The suite's own objects are named so that Leftovers finds them
	// (ObjectName, ObjectKey, "ipcchan-test-PID-"): none may remain.
	for name, l := range leftoverNames() {
		if _, ok := before[name]; !ok && !othersLive(l) {
			fmt.Fprintf(os.Stderr, "left behind by the tests: %v\n", l)
			code = max(code, 1)
		}
	}
	return code
}

// othersLive reports whether l belongs to a process that runs and is
// neither this one nor one of its descendants: another program (another
// test run on the same machine) that is using it.
func othersLive(l endpoints.Leftover) bool {
	if !l.Alive || l.Owner == 0 {
		return false
	}
	for pid := l.Owner; pid > 1; {
		if pid == os.Getpid() {
			return false
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false // gone meanwhile: judge it as ours
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 {
			return false
		}
		pid, _ = strconv.Atoi(fields[1])
	}
	return true
}

func leftoverNames() map[string]endpoints.Leftover {
	all, _ := endpoints.Leftovers()
	m := map[string]endpoints.Leftover{}
	for _, l := range all {
		m[l.Kind+" "+l.Name] = l
	}
	return m
}

// give hands ends to cmd with Pass or Share.
func give(cmd *exec.Cmd, share bool, ends map[string]ipcchantest.Passable) (func(), error) {
	var hs []endpoints.Handed
	for name, end := range ends {
		if share {
			hs = append(hs, endpoints.Share(name, end))
		} else {
			hs = append(hs, endpoints.Pass(name, end))
		}
	}
	return endpoints.Attach(cmd, hs...)
}

var pipeHarness = &ipcchantest.Harness{
	Name: "pipe",
	Pair: endpoints.PipePair[[]byte],
	Give: give,
	TakeSender: func(name string, opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], error) {
		// One writer unless the suite says it shares the end.
		return endpoints.InheritSender[[]byte](name, append([]ipcchan.Option{ipcchan.WithAtomicWrites(false)}, opts...)...)
	},
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxShared:    4096 - 8,
	SharedOpts:   []ipcchan.Option{ipcchan.WithAtomicWrites(true)},
}

var fifoHarness = &ipcchantest.Harness{
	Name:         "fifo",
	Pair:         fifoPair,
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   4096 - 8,
	MaxShared:    4096 - 8,
	Late:         fifoLate,
	JoinSender: func(path string, opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], error) {
		return endpoints.OpenFIFOSender[[]byte](context.Background(), path, opts...)
	},
}

// fifoLate makes a FIFO in a fresh directory and opens its read end only:
// a sender comes later by the path.
func fifoLate(opts ...ipcchan.Option) (*ipcchan.Receiver[[]byte], string, func(), error) {
	dir, err := os.MkdirTemp("", "ipcchan-fifo-")
	if err != nil {
		return nil, "", nil, err
	}
	path := dir + "/f"
	if err := endpoints.CreateFIFO(path); err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	rx, err := endpoints.OpenFIFOReceiver[[]byte](context.Background(), path, opts...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	return rx, path, func() { os.RemoveAll(dir) }, nil
}

// fifoPair makes a FIFO in a fresh directory, opens both ends and removes
// the directory again: the FIFO lives on in its open descriptors.
func fifoPair(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
	dir, err := os.MkdirTemp("", "ipcchan-fifo-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	path := dir + "/f"
	if err := endpoints.CreateFIFO(path); err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	rx, err := endpoints.OpenFIFOReceiver[[]byte](ctx, path, receiverSide(opts)...)
	if err != nil {
		return nil, nil, err
	}
	tx, err := endpoints.OpenFIFOSender[[]byte](ctx, path, senderSide(opts)...)
	if err != nil {
		rx.Close()
		return nil, nil, err
	}
	return tx, rx, nil
}

func TestPipeConformance(t *testing.T) { ipcchantest.Run(t, pipeHarness) }
func TestFIFOConformance(t *testing.T) { ipcchantest.Run(t, fifoHarness) }
func TestUnixConformance(t *testing.T) { ipcchantest.Run(t, unixHarness) }
func TestTCPConformance(t *testing.T)  { ipcchantest.Run(t, tcpHarness) }

func TestUnixgramConformance(t *testing.T)   { ipcchantest.Run(t, unixgramHarness) }
func TestUnixpacketConformance(t *testing.T) { ipcchantest.Run(t, unixpacketHarness) }
func TestUDPConformance(t *testing.T)        { ipcchantest.Run(t, udpHarness) }

// Options that configure one side of a channel alone. A harness that
// builds its two ends separately gives each its side's options, as a
// program would: the other side's are refused (ipcchan.ErrOption).
const (
	senderOnly   = transport.OptTag | transport.OptSendBuffer | transport.OptLinger | transport.OptAtomicWrites
	receiverOnly = transport.OptSenders | transport.OptRecvFiles
)

// senderSide returns opts without the receiver's own options.
func senderSide(opts []ipcchan.Option) []ipcchan.Option { return without(opts, receiverOnly) }

// receiverSide returns opts without the sender's own options.
func receiverSide(opts []ipcchan.Option) []ipcchan.Option { return without(opts, senderOnly) }

func without(opts []ipcchan.Option, names transport.OptionName) []ipcchan.Option {
	var out []ipcchan.Option
	for _, o := range opts {
		if o.Name()&names == 0 {
			out = append(out, o)
		}
	}
	return out
}
