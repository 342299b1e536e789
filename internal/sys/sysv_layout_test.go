//go:build linux

package sys

import (
	"bytes"
	"encoding/binary"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The SysV structures' sizes and the offsets of the fields the library
// reads, per architecture, from the kernel's uapi headers (asm/sembuf.h,
// asm/msgbuf.h; gcc -m64/-m32 offsetof on x86 and asm-generic). A wrong
// layout reads the count of a set or the bytes queued from a padding word.
func TestSysVLayouts(t *testing.T) {
	type layout struct{ semSize, nsems, msqSize, cbytes, lspid uintptr }
	var (
		x86_64    = layout{104, 80, 120, 72, 96}
		generic64 = layout{88, 64, 120, 72, 96} // arm64, riscv64, loong64, mips64, powerpc64, s390x
		generic32 = layout{64, 52, 88, 60, 72}  // 386, arm
		mips32    = layout{56, 44, 88, 60, 72}
	)
	want := map[string]layout{
		"amd64": x86_64, "arm64": generic64, "riscv64": generic64, "loong64": generic64,
		"mips64": generic64, "mips64le": generic64, "ppc64": generic64, "ppc64le": generic64, "s390x": generic64,
		"386": generic32, "arm": generic32, "mips": mips32, "mipsle": mips32,
	}[runtime.GOARCH]
	var s SemidDs
	var m MsqidDs
	got := layout{unsafe.Sizeof(s), unsafe.Offsetof(s.Nsems), unsafe.Sizeof(m), unsafe.Offsetof(m.Cbytes), unsafe.Offsetof(m.Lspid)}
	if want.semSize == 0 {
		t.Fatalf("no layout known for %s: add it from the kernel's headers", runtime.GOARCH)
	}
	if got != want {
		t.Fatalf("%s: semid64_ds size %d, sem_nsems at %d; msqid64_ds size %d, msg_cbytes at %d, msg_lspid at %d; want %+v",
			runtime.GOARCH, got.semSize, got.nsems, got.msqSize, got.cbytes, got.lspid, want)
	}
}

// semctl(IPC_STAT) through the architecture's entry point (ipc(2) or its
// own call, with IPC_64 where the kernel reads the version from the
// command) fills the layout SemidDs declares; SETVAL passes its value as
// the union semun.
func TestSemSetStat(t *testing.T) {
	id, err := Semget(IPCPrivate, 3, unix.IPC_CREAT|0o640)
	if err != nil {
		t.Skipf("SysV semaphores unavailable: %v", err)
	}
	defer Semctl(id, 0, unix.IPC_RMID, 0)
	var ds SemidDs
	if err := SemctlStat(id, &ds); err != nil {
		t.Fatal(err)
	}
	if ds.Nsems != 3 || ds.Perm.Mode&0o777 != 0o640 || ds.Perm.Uid != uint32(os.Getuid()) || ds.Perm.Cuid != uint32(os.Getuid()) {
		t.Fatalf("IPC_STAT: %+v; want 3 counters, mode 0640, uid %d", ds, os.Getuid())
	}
	if _, err := Semctl(id, 2, SETVAL, 30000); err != nil {
		t.Fatal(err)
	}
	if err := Semop(id, []Sembuf{{Num: 2, Op: -1, Flg: unix.IPC_NOWAIT}}); err != nil {
		t.Fatal(err)
	}
	if v, err := Semctl(id, 2, GETVAL, 0); err != nil || v != 29999 {
		t.Fatalf("GETVAL after SETVAL 30000 and one down: %d, %v", v, err)
	}
	if pid, err := Semctl(id, 2, GETPID, 0); err != nil || pid != os.Getpid() {
		t.Fatalf("GETPID: %d, %v; want %d", pid, err, os.Getpid())
	}
}

// struct msgbuf's mtype is a C long in the machine's byte order: 4 bytes
// on 32-bit Linux, and on a big-endian machine its low byte comes last.
func TestMtypeLayout(t *testing.T) {
	for _, c := range []struct {
		size  int
		order binary.ByteOrder
		want  []byte
	}{
		{8, binary.LittleEndian, []byte{0x05, 0x01, 0, 0, 0, 0, 0, 0}},
		{8, binary.BigEndian, []byte{0, 0, 0, 0, 0, 0, 0x01, 0x05}},
		{4, binary.LittleEndian, []byte{0x05, 0x01, 0, 0}},
		{4, binary.BigEndian, []byte{0, 0, 0x01, 0x05}},
	} {
		got := AppendMtypeAs(nil, 0x105, c.size, c.order.(binary.AppendByteOrder))
		if !bytes.Equal(got, c.want) || MtypeAs(got, c.size, c.order) != 0x105 {
			t.Errorf("%d bytes %v: %x (read back %d); want %x", c.size, c.order, got, MtypeAs(got, c.size, c.order), c.want)
		}
	}
	if MtypeSize != int(unsafe.Sizeof(uintptr(0))) {
		t.Errorf("MtypeSize %d on %s, a C long is %d bytes", MtypeSize, runtime.GOARCH, unsafe.Sizeof(uintptr(0)))
	}
	if got, want := AppendMtype(nil, 0x105), AppendMtypeAs(nil, 0x105, int(unsafe.Sizeof(uintptr(0))), nativeOrder().(binary.AppendByteOrder)); !bytes.Equal(got, want) || Mtype(got) != 0x105 {
		t.Errorf("native mtype %x (read back %d), want %x", got, Mtype(got), want)
	}
	if runtime.GOARCH == "386" && MtypeSize != 4 {
		t.Errorf("386: a long is 4 bytes")
	}
}

// SETVAL's union semun holds an int at its start: the high half of the
// word on a 64-bit big-endian machine.
func TestSemunInt(t *testing.T) {
	for _, c := range []struct {
		size  int
		order binary.ByteOrder
		want  uint64
	}{
		{8, binary.LittleEndian, 7},
		{8, binary.BigEndian, 7 << 32},
		{4, binary.LittleEndian, 7},
		{4, binary.BigEndian, 7},
	} {
		if got := SemunInt(7, c.size, c.order); got != c.want {
			t.Errorf("%d bytes %v: %#x, want %#x", c.size, c.order, got, c.want)
		}
	}
}
