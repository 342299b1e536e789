package codec

import (
	"bytes"
	"encoding/gob"
	"fmt"
)

// Gob returns a codec that encodes any value encoding/gob can, such as
// structs with slices, maps and strings. Every message is self-contained (a
// fresh gob encoder per message carries the type description along), so
// messages can be decoded in any order, by any number of receivers, and a
// lost or skipped message breaks nothing; the price is a few hundred bytes
// and a few microseconds per message. Decode first resets *v to the zero
// value. Safe for concurrent use.
//
// Use it between processes that trust each other. encoding/gob sizes a map
// by the count its input announces, before reading any entry, so a crafted
// message of a hundred bytes can make a receiver of a type holding maps
// allocate gigabytes and die (found by FuzzGob; Go 1.26's decodeMap calls
// reflect.MakeMapWithSize unchecked). For a peer you do not trust, choose
// JSON, Binary or an Appender type; a type without maps is decoded within
// the bounds of its input.
func Gob[T any]() Codec[T] { return gobCodec[T]{} }

type gobCodec[T any] struct{}

func (gobCodec[T]) Name() string { return "gob" }

// appendWriter is an io.Writer that appends to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (gobCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	w := &appendWriter{b: dst}
	if err := gob.NewEncoder(w).Encode(&v); err != nil {
		return dst, err
	}
	return w.b, nil
}

func (gobCodec[T]) Decode(data []byte, v *T) error {
	var zero T
	*v = zero
	r := bytes.NewReader(data)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("%w: gob: %w", ErrDecode, err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: gob: %d bytes left after the value", ErrDecode, r.Len())
	}
	return nil
}
