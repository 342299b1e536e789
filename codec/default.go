package codec

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"sync"
)

// Default returns the cheapest codec that fits T:
//
//   - []byte and string (and types whose underlying type is one of them):
//     the bytes as they are;
//   - types that encode themselves (see [Appender]);
//   - fixed-size values: [Binary] in little-endian order;
//   - anything else encoding/gob can encode: [Gob].
//
// It returns an error wrapping ErrUnsupportedType for types no codec can
// carry: channels, functions, unsafe pointers, and structs with none of
// their fields exported. Safe for concurrent use.
func Default[T any]() (Codec[T], error) {
	t := reflect.TypeFor[T]()
	if c, ok := defaults.Load(t); ok {
		return c.(Codec[T]), nil
	}
	c, err := chooseDefault[T](t)
	if err != nil {
		return nil, err
	}
	defaults.Store(t, c)
	return c, nil
}

// defaults caches Default's choice per type.
var defaults sync.Map // reflect.Type -> Codec[T]

func chooseDefault[T any](t reflect.Type) (Codec[T], error) {
	if c, ok := rawCodec[T](t); ok {
		return c, nil
	}
	if c, err := Appender[T](); err == nil {
		return c, nil
	}
	if t.Kind() != reflect.Interface {
		if c, err := Binary[T](binary.LittleEndian); err == nil {
			return c, nil
		}
	}
	if err := gobCanCarry(t, map[reflect.Type]bool{}); err != nil {
		return nil, fmt.Errorf("%w: no codec for %v: %w", ErrUnsupportedType, t, err)
	}
	return Gob[T](), nil
}

// rawCodec returns the bytes or string codec when T's underlying type is
// []byte or string.
func rawCodec[T any](t reflect.Type) (Codec[T], bool) {
	var c any
	switch {
	case t == reflect.TypeFor[string]():
		c = String()
	case t == reflect.TypeFor[[]byte]():
		c = Bytes()
	case t.Kind() == reflect.String:
		c = namedString[T]()
	case t.Kind() == reflect.Slice && t.Elem() == reflect.TypeFor[byte]():
		c = namedBytes[T]()
	default:
		return nil, false
	}
	cc, ok := c.(Codec[T])
	return cc, ok
}

// gobCanCarry reports why gob could not encode t, or nil.
func gobCanCarry(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Uintptr:
		return fmt.Errorf("gob cannot encode %v", t)
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return gobCanCarry(t.Elem(), seen)
	case reflect.Map:
		if err := gobCanCarry(t.Key(), seen); err != nil {
			return err
		}
		return gobCanCarry(t.Elem(), seen)
	case reflect.Struct:
		exported := 0
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			exported++
			if err := gobCanCarry(f.Type, seen); err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
		}
		if exported == 0 && t.NumField() > 0 {
			return fmt.Errorf("%v has no exported fields", t)
		}
	}
	return nil
}
