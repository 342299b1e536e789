package endpoints_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/go/endpoints"
)

func init() {
	// squat-keys makes, as another user, a SysV queue, semaphore set and
	// segment under each key SQUAT_BASE+0 to +15 but SQUAT_FREE (-1: none).
	childRoles["squat-keys"] = func() error {
		base := envKey("SQUAT_BASE")
		free, _ := strconv.Atoi(os.Getenv("SQUAT_FREE"))
		for seq := range 16 {
			if seq == free {
				continue
			}
			k := base + endpoints.Key(seq)
			if _, err := endpoints.CreateSysVQueue(k); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if _, err := endpoints.CreateSemSet(k, 1); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if _, err := endpoints.CreateSysVShm(k, 64); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		return nil
	}
}

// removeKeyed removes every SysV queue, set and segment under keys
// base+0 to base+15.
func removeKeyed(base endpoints.Key) {
	for seq := range 16 {
		k := base + endpoints.Key(seq)
		if q, err := endpoints.OpenSysVQueue(k); err == nil {
			q.Remove()
		}
		if s, err := endpoints.OpenSemSet(k); err == nil {
			s.Remove()
		}
		if m, err := endpoints.OpenSysVShm(k); err == nil {
			m.Remove()
			m.Close()
		}
	}
}

// Another user who makes objects under all but one of the keys ObjectKey
// gives this process does not keep it from creating SysV objects with
// CreateWithObjectKey, which finds the free key; with all of them taken,
// the error says so and by whom.
func TestCreateWithObjectKeySquatted(t *testing.T) {
	base := endpoints.ObjectKey() &^ 0xF
	const free = 9
	squat := otherUser(t, "squat-keys", keyEnv("SQUAT_BASE", base), "SQUAT_FREE="+strconv.Itoa(free))
	t.Cleanup(func() { removeKeyed(base) })
	if err := squat.Run(); err != nil {
		t.Fatalf("squatter: %v", err)
	}

	q, key, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SysVQueue, error) {
		return endpoints.CreateSysVQueue(k)
	})
	if err != nil || key != base+free {
		t.Errorf("CreateWithObjectKey(CreateSysVQueue) = key %#x, %v; want the free key %#x", key, err, base+free)
	} else if st, err := q.Stats(); err != nil {
		t.Errorf("the queue made: %v", err)
	} else {
		t.Logf("queue under %#x: %+v", key, st)
	}
	_, key, err = endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SemSet, error) {
		return endpoints.CreateSemSet(k, 1)
	})
	if err != nil || key != base+free {
		t.Errorf("CreateWithObjectKey(CreateSemSet) = key %#x, %v; want the free key %#x", key, err, base+free)
	}
	m, key, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.Mapping, error) {
		return endpoints.CreateSysVShm(k, 64)
	})
	if err != nil || key != base+free {
		t.Errorf("CreateWithObjectKey(CreateSysVShm) = key %#x, %v; want the free key %#x", key, err, base+free)
	} else {
		m.Close()
	}

	// All 16 taken: a clear error, and nothing made.
	removeKeyed(base)
	if err := otherUser(t, "squat-keys", keyEnv("SQUAT_BASE", base), "SQUAT_FREE=-1").Run(); err != nil {
		t.Fatalf("squatter: %v", err)
	}
	calls := 0
	_, _, err = endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SysVQueue, error) {
		calls++
		return endpoints.CreateSysVQueue(k)
	})
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), fmt.Sprintf("uid %d", otherUID)) || !strings.Contains(err.Error(), "IPCPrivate") {
		t.Errorf("with every key taken: %v; want an error wrapping fs.ErrExist that names the holder and IPCPrivate", err)
	}
	if calls != 16 {
		t.Errorf("tried %d keys, want each of the 16 once", calls)
	}
}
