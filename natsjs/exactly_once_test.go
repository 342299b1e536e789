package natsjs_test

import (
	"fmt"
	"strings"
	"testing"
)

// Delivery is one value a receiver process reported to the test's parent
// from inside a transport-level deliver, that is before the value was
// acknowledged.
type Delivery struct {
	// Receiver names the receiver process. A restarted process is another
	// receiver ("r1", then "r1.2"), as it is another incarnation.
	Receiver string
	// Value is the value delivered: 0..n-1 in the checks below.
	Value int
	// NotTaken says the receiver's Recv returned an error instead of this
	// value (its acknowledgement was not confirmed), so the value must
	// come again. Set it when the receiver reports such an error after
	// the delivery.
	NotTaken bool
}

// CheckExactlyOnce checks that the values 0..n-1 were each taken exactly
// once by the receivers whose deliveries are ds, in the order each
// receiver reported them (and receivers concatenated in the order they
// ran, for ordered). killed names the receivers that were SIGKILLed.
//
// The rule is exact. A value's delivery is uncertain when it was the last
// delivery of a killed receiver (its acknowledgement may or may not have
// been recorded before the kill), and not taken when NotTaken is set. Each
// value must be delivered at least once; every delivery of it but its last
// must be uncertain or not taken (a value delivered twice is allowed only
// because its first delivery was not taken); its last delivery must not
// be a not-taken one (it would be missing). Values outside 0..n-1 are
// errors. With ordered, the last deliveries of the values, in the order of
// ds, must be 0, 1, ..., n-1: this is the order across receiver crashes
// that MaxPending 1 promises.
//
// It returns an error describing every violation (up to 20), nil if none.
func CheckExactlyOnce(ds []Delivery, n int, killed []string, ordered bool) error {
	isKilled := map[string]bool{}
	for _, k := range killed {
		isKilled[k] = true
	}
	lastOf := map[string]int{}
	for i, d := range ds {
		lastOf[d.Receiver] = i
	}
	uncertain := func(i int) bool {
		return ds[i].NotTaken || (isKilled[ds[i].Receiver] && lastOf[ds[i].Receiver] == i)
	}
	var problems []string
	bad := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	byValue := make([][]int, n)
	for i, d := range ds {
		if d.Value < 0 || d.Value >= n {
			bad("delivery #%d (receiver %s): value %d outside 0..%d", i, d.Receiver, d.Value, n-1)
			continue
		}
		byValue[d.Value] = append(byValue[d.Value], i)
	}
	final := make([]bool, len(ds)) // the last delivery of its value
	for v, is := range byValue {
		if len(is) == 0 {
			bad("value %d missing", v)
			continue
		}
		for _, i := range is[:len(is)-1] {
			if !uncertain(i) {
				bad("value %d delivered again (delivery #%d by %s) after delivery #%d by %s, which was taken (not a killed receiver's last, not refused)",
					v, is[len(is)-1], ds[is[len(is)-1]].Receiver, i, ds[i].Receiver)
			}
		}
		last := is[len(is)-1]
		if ds[last].NotTaken {
			bad("value %d missing: its last delivery (#%d by %s) was not taken and it never came again", v, last, ds[last].Receiver)
		}
		final[last] = true
	}
	if ordered {
		next := 0
		for i, d := range ds {
			if !final[i] {
				continue
			}
			if d.Value != next {
				bad("order: delivery #%d (by %s) is value %d where %d was due", i, d.Receiver, d.Value, next)
			}
			next = d.Value + 1
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("not exactly once (%d deliveries of %d values):\n\t%s", len(ds), n, strings.Join(problems, "\n\t"))
	}
	return nil
}

// TestCheckExactlyOnce checks the checker on the cases it must accept and
// refuse, so that a test using it cannot pass vacuously.
func TestCheckExactlyOnce(t *testing.T) {
	d := func(r string, vs ...int) []Delivery {
		var out []Delivery
		for _, v := range vs {
			out = append(out, Delivery{Receiver: r, Value: v})
		}
		return out
	}
	cat := func(parts ...[]Delivery) []Delivery {
		var out []Delivery
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	notTaken := func(r string, v int) []Delivery { return []Delivery{{Receiver: r, Value: v, NotTaken: true}} }
	for _, c := range []struct {
		name    string
		ds      []Delivery
		killed  []string
		ordered bool
		ok      bool
	}{
		{"clean", d("a", 0, 1, 2, 3), nil, true, true},
		{"killed last comes again", cat(d("a", 0, 1, 2), d("b", 2, 3)), []string{"a"}, true, true},
		{"killed last taken (ack recorded)", cat(d("a", 0, 1, 2), d("b", 3)), []string{"a"}, true, true},
		{"duplicate not last of killed", cat(d("a", 0, 1, 2), d("b", 1, 2, 3)), []string{"a"}, true, false},
		{"duplicate of a live receiver", cat(d("a", 0, 1, 2), d("b", 2, 3)), nil, true, false},
		{"missing", d("a", 0, 1, 3), nil, false, false},
		{"out of order", d("a", 0, 2, 1, 3), nil, true, false},
		{"out of order unordered ok", d("a", 0, 2, 1, 3), nil, false, true},
		{"out of range", d("a", 0, 1, 2, 3, 4), nil, false, false},
		{"refused ack comes again", cat(d("a", 0, 1), notTaken("a", 2), d("a", 2, 3)), nil, true, true},
		{"refused ack never again", cat(d("a", 0, 1), notTaken("a", 2), d("a", 3)), nil, false, false},
		{"two receivers unordered", cat(d("a", 0, 2), d("b", 1, 3)), nil, false, true},
		{"killed twice", cat(d("a", 0, 1), d("b", 1, 2), d("c", 2, 3)), []string{"a", "b"}, true, true},
	} {
		err := CheckExactlyOnce(c.ds, 4, c.killed, c.ordered)
		if (err == nil) != c.ok {
			t.Errorf("%s: CheckExactlyOnce = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
