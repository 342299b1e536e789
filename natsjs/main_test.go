package natsjs_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

func TestMain(m *testing.M) {
	serveChild()
	natsChild()
	ipcchantest.Child(natsHarness)
	goleak.VerifyTestMain(m)
}
