package endpoints_test

import (
	"testing"

	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// TestStress runs ipcchantest.Stress over every endpoint: a short form by
// default, as long as IPCCHAN_STRESS says otherwise, e.g.
//
//	IPCCHAN_STRESS=2m go test -race -run Stress -timeout 1h ./endpoints
func TestStress(t *testing.T) {
	for _, h := range []*ipcchantest.Harness{pipeHarness, fifoHarness, unixHarness, tcpHarness,
		unixgramHarness, unixpacketHarness, udpHarness, posixMQHarness, sysvMQHarness, ringHarness} {
		t.Run(h.Name, func(t *testing.T) { ipcchantest.Stress(t, h) })
	}
}
