package endpoints

import (
	"sync/atomic"
	"testing"
)

// A writer's last try before it sleeps (parkOn on wwait) may succeed while
// another writer process announces itself on wwait — after the try's
// unlock woke the writers, before parkOn returns. That announcement must
// stay: the other writer sleeps on the futex until someone sees the word
// set, and a writer that cleared it on its way out (as parkOn did for
// every word) left it asleep with an empty ring and nobody to wake it
// (TestCRingMultiWriter in clients/, two C writers and a Go writer on a
// futex-only ring, hung about one run in ten). The reader's rwait, which
// is its alone, is still taken back.
func TestParkOnKeepsOtherWritersAnnouncement(t *testing.T) {
	for _, c := range []struct {
		name   string
		shared bool
		want   uint32
	}{{"wwait", true, 1}, {"rwait", false, 0}} {
		var word uint32
		// The try succeeds; meanwhile (simulated inside it) another
		// writer stores 1 to announce that it sleeps.
		try := func(int) error { atomic.StoreUint32(&word, 1); return nil }
		if err := parkOn(&word, c.shared, try, 0, nil); err != nil {
			t.Fatal(err)
		}
		if got := atomic.LoadUint32(&word); got != c.want {
			t.Errorf("%s after a successful last try: %d; want %d", c.name, got, c.want)
		}
	}
}
