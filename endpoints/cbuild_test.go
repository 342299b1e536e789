package endpoints_test

import (
	"testing"

	"github.com/ipcchan/ipcchan/internal/ctest"
)

// buildC compiles the C program src (see ctest.Build), skipping tb when gcc
// is not installed.
func buildC(tb testing.TB, name, src string, flags ...string) string {
	tb.Helper()
	return ctest.Build(tb, name, src, flags...)
}
