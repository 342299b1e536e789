package endpoints_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// The options matrix for ipcchan.WithWaitForCreate: the opens of objects
// another program creates honour it (they fail here only because nothing
// creates the object before the short deadline), everything else refuses
// it with ErrOption, naming it.
func TestWaitForCreateOptionMatrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	wait := ipcchan.WithWaitForCreate(ctx)
	dir := t.TempDir()
	m, err := endpoints.NewMemfd("matrix", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ignore := func(_ any, err error) error { return err }
	honour := map[string]func() error{
		"OpenFIFOReceiver": func() error { return ignore(endpoints.OpenFIFOReceiver[int](ctx, dir+"/f", wait)) },
		"OpenFIFOSender":   func() error { return ignore(endpoints.OpenFIFOSender[int](ctx, dir+"/f", wait)) },
		"OpenMQSender":     func() error { return ignore(endpoints.OpenMQSender[int](endpoints.ObjectName("m"), wait)) },
		"OpenMQReceiver":   func() error { return ignore(endpoints.OpenMQReceiver[int](endpoints.ObjectName("m"), wait)) },
		"OpenSysVQueue":    func() error { return ignore(endpoints.OpenSysVQueue(endpoints.ObjectKey(), wait)) },
		"OpenShm":          func() error { return ignore(endpoints.OpenShm(endpoints.ObjectName("s"), wait)) },
		"OpenSysVShm":      func() error { return ignore(endpoints.OpenSysVShm(endpoints.ObjectKey(), wait)) },
		"OpenFileMapping":  func() error { return ignore(endpoints.OpenFileMapping(dir+"/m", wait)) },
		"Dial unix":        func() error { return ignore(endpoints.Dial[int, int](ctx, "unix", dir+"/s", wait)) },
		"Dial unixpacket":  func() error { return ignore(endpoints.Dial[int, int](ctx, "unixpacket", dir+"/s", wait)) },
		"DialPacket":       func() error { return ignore(endpoints.DialPacket[int](ctx, "unixgram", dir+"/s", wait)) },
		"RingSender":       func() error { return ignore(endpoints.RingSender[int](m, wait)) },
		"RingReceiver":     func() error { return ignore(endpoints.RingReceiver[int](m, wait)) },
	}
	for name, f := range honour {
		if err := f(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want the wait to end with context.DeadlineExceeded", name, err)
		}
	}
	refuse := map[string]func() error{
		"CreateFIFO":      func() error { return endpoints.CreateFIFO(dir+"/g", wait) },
		"CreateShm":       func() error { return ignore(endpoints.CreateShm(endpoints.ObjectName("c"), 4096, wait)) },
		"CreateMQ":        func() error { return endpoints.CreateMQ(endpoints.ObjectName("c"), endpoints.MQAttr{}, wait) },
		"RingPair":        func() error { return ignore3(endpoints.RingPair[int](4096, wait)) },
		"Dial tcp":        func() error { return ignore(endpoints.Dial[int, int](ctx, "tcp", "127.0.0.1:1", wait)) },
		"DialPacket udp":  func() error { return ignore(endpoints.DialPacket[int](ctx, "udp", "127.0.0.1:1", wait)) },
		"Listen unix":     func() error { return ignore(endpoints.Listen[int, int](ctx, "unix", dir+"/l", wait)) },
		"FormatRing":      func() error { return endpoints.FormatRing(m, wait) },
		"CreateSysVQueue": func() error { return ignore(endpoints.CreateSysVQueue(endpoints.ObjectKey(), wait)) },
	}
	for name, f := range refuse {
		if err := f(); !errors.Is(err, ipcchan.ErrOption) {
			t.Errorf("%s: %v, want ErrOption", name, err)
		}
	}
}

func ignore3[A, B any](_ A, _ B, err error) error { return err }
