package codec

import (
	"errors"
	"fmt"
	"io"
)

// FrameReader reads frames from any io.Reader (a file, a socket, a C
// program's pipe), for programs that want the wire format without an
// ipcchan endpoint. It is not safe for concurrent use.
type FrameReader struct {
	r   io.Reader
	max int
	hdr [HeaderSize]byte
	buf []byte
	err error // sticky
}

// NewFrameReader returns a FrameReader that refuses payloads longer than
// maxSize bytes; maxSize <= 0 means DefaultMaxFrameSize.
func NewFrameReader(r io.Reader, maxSize int) *FrameReader {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	return &FrameReader{r: r, max: maxSize}
}

// ReadFrame reads the next frame. payload is valid until the next call. It
// returns io.EOF at a clean end between frames, io.ErrUnexpectedEOF if the
// stream ends inside a frame, and an error wrapping ErrFrameTooLarge,
// before allocating anything, for a payload over the limit. Memory for a
// payload grows as its bytes arrive, to at most twice what has arrived (64
// KiB at first), never to what the header announces. After an error the
// reader is done: later calls return the same error.
func (fr *FrameReader) ReadFrame() (tag uint32, payload []byte, err error) {
	if fr == nil || fr.r == nil {
		return 0, nil, errors.New("codec: a zero FrameReader: make one with NewFrameReader")
	}
	if fr.err != nil {
		return 0, nil, fr.err
	}
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, fr.fail(err, 0)
	}
	length, tag := ParseHeader(fr.hdr[:])
	if err := CheckLength(length, fr.max); err != nil {
		return 0, nil, fr.fail(err, 0)
	}
	// The buffer grows with the bytes that arrive, never straight to the
	// length the header announces: a peer announcing the most and sending
	// nothing costs nothing.
	n := int(length)
	fr.buf = fr.buf[:0]
	for len(fr.buf) < n {
		if len(fr.buf) == cap(fr.buf) {
			nb := make([]byte, len(fr.buf), min(n, max(2*cap(fr.buf), readChunk)))
			fr.buf = append(nb[:0], fr.buf...)
		}
		k, err := io.ReadFull(fr.r, fr.buf[len(fr.buf):min(n, cap(fr.buf))])
		fr.buf = fr.buf[:len(fr.buf)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, fr.fail(err, length)
		}
	}
	return tag, fr.buf, nil
}

// readChunk is the first size of a FrameReader's buffer for a frame longer
// than it has held before.
const readChunk = 64 << 10

func (fr *FrameReader) fail(err error, length uint32) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("stream ended inside a frame (%d-byte payload announced): %w", length, io.ErrUnexpectedEOF)
	}
	fr.err = err
	return err
}

// FrameWriter writes frames to any io.Writer, each with one Write call. It
// is not safe for concurrent use.
type FrameWriter struct {
	w   io.Writer
	buf []byte
}

// NewFrameWriter returns a FrameWriter on w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// WriteFrame writes one frame carrying tag and payload. It returns the
// writer's error, or one wrapping ErrFrameTooLarge if the payload does not
// fit in a frame.
func (fw *FrameWriter) WriteFrame(tag uint32, payload []byte) error {
	if fw == nil || fw.w == nil {
		return errors.New("codec: a zero FrameWriter: make one with NewFrameWriter")
	}
	if uint64(len(payload)) > MaxFrameSize {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(payload))
	}
	fw.buf = AppendFrame(fw.buf[:0], tag, payload)
	_, err := fw.w.Write(fw.buf)
	return err
}
