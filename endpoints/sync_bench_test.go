package endpoints_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/sys"
)

// BenchmarkSemaphoreUncontended measures Acquire+Release with nobody
// waiting: our POSIX semaphore, glibc's sem_wait+sem_post from C (the
// program runs b.N iterations and the benchmark times it), a SysV counter
// through ours and through raw semop, and an OFD file lock.
func BenchmarkSemaphoreUncontended(b *testing.B) {
	ctx := context.Background()
	b.Run("posix/ipcchan", func(b *testing.B) {
		m, _ := endpoints.NewMemfd("sem", 64)
		defer m.Close()
		s, _ := endpoints.InitSemaphore(m, 0, 1)
		b.ReportAllocs()
		for range b.N {
			if err := s.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
			s.Release(1)
		}
	})
	b.Run("posix/glibc", func(b *testing.B) {
		bin := buildC(b, "sembench", `#include <semaphore.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	static sem_t s; sem_init(&s, 1, 1);
	for (long i = 0, n = atol(argv[1]); i < n; i++) { sem_wait(&s); sem_post(&s); }
	return 0;
}
`, "-pthread")
		exec.Command(bin, "1000").Run() // warm the page cache
		b.ResetTimer()
		if err := exec.Command(bin, strconv.Itoa(b.N)).Run(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("sysv/ipcchan", func(b *testing.B) {
		set, err := endpoints.CreateSemSet(endpoints.IPCPrivate, 1)
		if err != nil {
			b.Skip(err)
		}
		defer set.Remove()
		set.SetValue(0, 1)
		c := set.Counter(0)
		b.ReportAllocs()
		for range b.N {
			if err := c.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
			c.Release(1)
		}
	})
	b.Run("sysv/raw-semop", func(b *testing.B) {
		set, err := endpoints.CreateSemSet(endpoints.IPCPrivate, 1)
		if err != nil {
			b.Skip(err)
		}
		defer set.Remove()
		set.SetValue(0, 1)
		down := []sys.Sembuf{{Num: 0, Op: -1, Flg: sys.SEM_UNDO}}
		up := []sys.Sembuf{{Num: 0, Op: 1, Flg: sys.SEM_UNDO}}
		b.ReportAllocs()
		for range b.N {
			sys.Semop(set.ID(), down)
			sys.Semop(set.ID(), up)
		}
	})
	b.Run("ofd-lock/ipcchan", func(b *testing.B) {
		l, _ := endpoints.OpenLock(filepath.Join(b.TempDir(), "lock"), endpoints.OFDLocks)
		defer l.Close()
		b.ReportAllocs()
		for range b.N {
			if err := l.Lock(ctx); err != nil {
				b.Fatal(err)
			}
			l.Unlock()
		}
	})
}
