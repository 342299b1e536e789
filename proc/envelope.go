package proc

import (
	"encoding/binary"
	"fmt"

	"github.com/ipcchan/go/codec"
)

// Jobs and results travel in envelopes that carry their number; the
// envelope's codec wraps the element's own (codec.Default), so a
// fixed-size job costs no reflection and no allocation:
//
//	job:    id uint64 BE, then the job as its codec writes it
//	result: id uint64 BE, ok uint8, error length uint32 BE, error text,
//	        then the value as its codec writes it
type jobCodec[J any] struct{ inner codec.Codec[J] }

func newJobCodec[J any]() (codec.Codec[jobMsg[J]], error) {
	c, err := codec.Default[J]()
	if err != nil {
		return nil, err
	}
	return jobCodec[J]{c}, nil
}

func (c jobCodec[J]) Name() string { return "proc-job/" + c.inner.Name() }

func (c jobCodec[J]) Append(dst []byte, m jobMsg[J]) ([]byte, error) {
	return c.inner.Append(binary.BigEndian.AppendUint64(dst, m.ID), m.Job)
}

func (c jobCodec[J]) Decode(data []byte, m *jobMsg[J]) error {
	if len(data) < 8 {
		return fmt.Errorf("%w: a %d-byte job envelope", codec.ErrDecode, len(data))
	}
	m.ID = binary.BigEndian.Uint64(data)
	return c.inner.Decode(data[8:], &m.Job)
}

type resultCodec[R any] struct{ inner codec.Codec[R] }

func newResultCodec[R any]() (codec.Codec[resultMsg[R]], error) {
	c, err := codec.Default[R]()
	if err != nil {
		return nil, err
	}
	return resultCodec[R]{c}, nil
}

func (c resultCodec[R]) Name() string { return "proc-result/" + c.inner.Name() }

func (c resultCodec[R]) Append(dst []byte, m resultMsg[R]) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, m.ID)
	ok := byte(0)
	if m.Ok {
		ok = 1
	}
	dst = append(dst, ok)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Err)))
	dst = append(dst, m.Err...)
	return c.inner.Append(dst, m.Value)
}

func (c resultCodec[R]) Decode(data []byte, m *resultMsg[R]) error {
	if len(data) < 13 {
		return fmt.Errorf("%w: a %d-byte result envelope", codec.ErrDecode, len(data))
	}
	m.ID = binary.BigEndian.Uint64(data)
	m.Ok = data[8] == 1
	n := binary.BigEndian.Uint32(data[9:])
	if uint64(n) > uint64(len(data)-13) {
		return fmt.Errorf("%w: a %d-byte error text in a %d-byte result", codec.ErrDecode, n, len(data))
	}
	m.Err = ""
	if n > 0 {
		m.Err = string(data[13 : 13+n])
	}
	return c.inner.Decode(data[13+n:], &m.Value)
}

// envelopeCodecs returns the codecs of a pool's two channels: the jobs
// (jobMsg[J]) and the results (resultMsg[R]).
func envelopeCodecs[J, R any]() (codec.Codec[jobMsg[J]], codec.Codec[resultMsg[R]], error) {
	jc, err := newJobCodec[J]()
	if err != nil {
		return nil, nil, err
	}
	rc, err := newResultCodec[R]()
	if err != nil {
		return nil, nil, err
	}
	return jc, rc, nil
}
