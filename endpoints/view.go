package endpoints

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"unsafe"

	"github.com/ipcchan/go/ipcchan"
)

// View is typed access to one value of type T at a fixed offset in a
// [Mapping]: a struct shared with other processes, such as a C program's
// struct { int pid; int counter; }. T's memory layout is Go's, which on
// Linux matches C's for the same fields in the same order (the C-layout
// codec checks this against gcc). Its methods are safe for concurrent use;
// concurrent writers in several processes coordinate through atomic
// operations on the fields (see [View.Update]) or a lock.
type View[T any] struct {
	m   *Mapping
	off int
}

// ViewOf returns a view of the T at offset in m. T must be a fixed-size
// value without pointers — numbers, bools, arrays and structs of them — so
// that its bytes mean the same in every process; offset must be aligned
// for T and the value must fit in the mapping. On 32-bit Linux Go aligns
// 64-bit integers to 4 bytes only, while sync/atomic's 64-bit functions
// need 8: put a value you update with them at a multiple of 8.
func ViewOf[T any](m *Mapping, offset int) (*View[T], error) {
	t := reflect.TypeFor[T]()
	desc := m.String()
	if err := checkPlain(t); err != nil {
		return nil, &ipcchan.OpError{Op: "view", Endpoint: desc, Err: fmt.Errorf("%v cannot be shared: %w", t, err)}
	}
	switch {
	case offset < 0 || offset+int(t.Size()) > m.Len():
		return nil, &ipcchan.OpError{Op: "view", Endpoint: desc, Err: fmt.Errorf("%w: %d bytes at offset %d of %d", ErrMappingSize, t.Size(), offset, m.Len())}
	case offset%t.Align() != 0:
		return nil, &ipcchan.OpError{Op: "view", Endpoint: desc, Err: fmt.Errorf("offset %d is not aligned for %v (%d)", offset, t, t.Align())}
	}
	return &View[T]{m: m, off: offset}, nil
}

// checkPlain reports why t cannot live in shared memory, if it cannot.
func checkPlain(t reflect.Type) error {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		return checkPlain(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if err := checkPlain(t.Field(i).Type); err != nil {
				return fmt.Errorf("field %s: %w", t.Field(i).Name, err)
			}
		}
		return nil
	}
	return fmt.Errorf("a %v holds a pointer or has no fixed size", t.Kind())
}

// Update calls f with a pointer to the value in shared memory, while the
// mapping is guaranteed to stay mapped; f must not keep the pointer. Use
// sync/atomic on fields for updates other processes may race with:
//
//	v.Update(func(p *Counter) { atomic.AddInt32(&p.Count, 1) })
//
// It returns an error wrapping os.ErrClosed after the mapping is closed.
//
// On a mapping a peer can shrink (see [Mapping]), f runs under the fault
// guard (runtime/debug.SetPanicOnFault): if the memory is gone, the fault
// in f becomes an error wrapping [ErrCorrupt] that Update returns, then
// and on every later call, instead of killing the process. f is then cut
// short where it faulted. Panics in f other than faults on the mapping go
// on as they are.
func (v *View[T]) Update(f func(*T)) (err error) {
	switch {
	case v == nil || !v.m.made():
		return errNotMade("view", "View", "ViewOf")
	case f == nil:
		return v.m.opErr("view", errors.New("Update with a nil function"))
	}
	if !v.m.uses.enter() {
		return v.m.opErr("view", os.ErrClosed)
	}
	defer v.m.uses.leave()
	if v.m.guard {
		if err := v.m.faultErr(); err != nil {
			return v.m.opErr("view", err)
		}
		old := debug.SetPanicOnFault(true)
		defer func() {
			debug.SetPanicOnFault(old)
			if p := recover(); p != nil {
				err = v.m.opErr("view", v.m.faulted(p))
			}
		}()
	}
	f((*T)(unsafe.Pointer(&v.m.data[v.off])))
	return nil
}

// Load returns a copy of the value (not atomic as a whole), or the error
// of Update.
func (v *View[T]) Load() (T, error) {
	var x T
	err := v.Update(func(p *T) { x = *p })
	return x, err
}

// Store overwrites the value (not atomic as a whole), or returns the
// error of Update.
func (v *View[T]) Store(x T) error {
	return v.Update(func(p *T) { *p = x })
}
