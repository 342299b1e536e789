package codec

import (
	"encoding"
	"fmt"
	"reflect"
	"sync"
)

// Appender returns a codec for a type that encodes itself: T or *T
// implements encoding.BinaryAppender (preferred: no intermediate slice) or
// encoding.BinaryMarshaler, and *T implements encoding.BinaryUnmarshaler. T
// may also be a pointer type whose element has these methods; Decode then
// allocates the element when *v is nil.
//
// Encoding a value through AppendBinary allocates nothing beyond what the
// method itself does (methods on *T get a pooled *T): the method must not
// keep its receiver after it returns. Errors of UnmarshalBinary
// are wrapped so that errors.Is finds both ErrDecode and the original.
// Appender returns an error wrapping ErrUnsupportedType for other types.
// Safe for concurrent use.
func Appender[T any]() (Codec[T], error) {
	t := reflect.TypeFor[T]()
	pt := reflect.PointerTo(t)
	c := &appenderCodec[T]{}
	c.scratch.New = func() any { return new(T) }
	switch {
	case implements[encoding.BinaryUnmarshaler](pt) && canEncode(pt):
		c.viaPointer = true // methods on *T (value receivers included)
	case t.Kind() == reflect.Pointer && implements[encoding.BinaryUnmarshaler](t) && canEncode(t):
		c.elem = t.Elem()
	default:
		return nil, fmt.Errorf("%w: %v does not implement encoding.BinaryAppender or BinaryMarshaler together with BinaryUnmarshaler", ErrUnsupportedType, t)
	}
	return c, nil
}

func implements[I any](t reflect.Type) bool { return t.Implements(reflect.TypeFor[I]()) }

func canEncode(t reflect.Type) bool {
	return implements[encoding.BinaryAppender](t) || implements[encoding.BinaryMarshaler](t)
}

type appenderCodec[T any] struct {
	viaPointer bool         // the methods are on *T
	elem       reflect.Type // T is a pointer to elem, which has the methods
	scratch    sync.Pool    // of *T, for calling methods on *T
}

func (c *appenderCodec[T]) Name() string { return "binary-marshaler" }

func (c *appenderCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	var m any
	if c.viaPointer {
		// The method wants a *T: lend one from the pool rather than let v
		// escape to the heap on every call.
		p := c.scratch.Get().(*T)
		*p = v
		defer func() {
			var zero T
			*p = zero
			c.scratch.Put(p)
		}()
		m = p
	} else {
		m = v
	}
	if a, ok := m.(encoding.BinaryAppender); ok {
		return a.AppendBinary(dst)
	}
	b, err := m.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (c *appenderCodec[T]) Decode(data []byte, v *T) error {
	var u encoding.BinaryUnmarshaler
	if c.viaPointer {
		u = any(v).(encoding.BinaryUnmarshaler)
	} else {
		if reflect.ValueOf(v).Elem().IsNil() {
			reflect.ValueOf(v).Elem().Set(reflect.New(c.elem))
		}
		u = any(*v).(encoding.BinaryUnmarshaler)
	}
	if err := u.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return nil
}
