package codec

import (
	"encoding/json"
	"fmt"
)

// JSON returns a codec that encodes values as JSON text with encoding/json,
// the natural choice when the peer is a C, Python or JavaScript program.
// Decode first resets *v to the zero value, so no field of a reused value
// survives from an earlier message. Safe for concurrent use.
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

type jsonCodec[T any] struct{}

func (jsonCodec[T]) Name() string { return "json" }

func (jsonCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (jsonCodec[T]) Decode(data []byte, v *T) error {
	var zero T
	*v = zero
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: json: %w", ErrDecode, err)
	}
	return nil
}
