package ipcchan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/ipcchan/go/ipcchan/transport"
	"hash/fnv"
	"reflect"
	"strings"
)

// The handshake. On endpoints that have one (byte streams: pipes, FIFOs,
// stream sockets), a Sender's first frame is a hello, and a Receiver
// refuses to decode anything until a hello has told it that the peer
// speaks its wire format, its codec and its element type. A peer built
// with another T, another codec or another version of this library is
// refused with an error wrapping ErrHandshake instead of decoding garbage.
//
// The hello's format and the fingerprint's algorithm are in PROTOCOL.md
// (§3, §4). A C or Python peer either writes a hello first (and skips the
// one it receives) or talks to Go endpoints made with WithHandshake(false).
//
// Until the hello has arrived, a Receiver on a byte stream accepts no frame
// longer than the longest hello (274 bytes of payload): a longer first
// frame is refused with ErrHandshake before anything is allocated for it.
const (
	handshakeTag     = transport.HandshakeTag
	handshakeMagic   = "IPCCHAN\x00"
	handshakeVersion = 1

	// maxHelloSize is the longest hello payload: magic, version, the
	// codec name's length and the longest name, fingerprint.
	maxHelloSize = len(handshakeMagic) + 2 + 1 + 255 + 8
)

// ErrHandshake is wrapped by the error a Receiver returns when its peer's
// hello does not match it (another element type, codec or wire version),
// or when a frame arrives with no hello before it. The Receiver then stays
// failed: every later receive returns the same error.
var ErrHandshake = errors.New("ipcchan: handshake refused")

// errHelloTag is the error for a value sent with the hello's tag on a
// channel whose hello is on: its receiver would take it for a hello.
var errHelloTag = fmt.Errorf("%w: %#x is the hello's tag while the handshake is on", ErrReservedTag, handshakeTag)

// helloFits refuses, with the handshake on, a largest message shorter
// than the hello, n bytes, that opens the channel: every Send would fail
// on the hello, and a receiver refuse it. max is WithMaxMessageSize's,
// tmax the transport's own limit (0: none known).
func helloFits(n, max, tmax int) error {
	switch {
	case n > max:
		return fmt.Errorf("%w: %s(%d) is less than the %d-byte hello that opens the channel: raise it, or turn the handshake off on both ends (%s(false))",
			ErrOption, transport.OptMaxMessageSize, max, n, transport.OptHandshake)
	case tmax > 0 && n > tmax:
		return fmt.Errorf("%w: %s(true): the %d-byte hello does not fit the transport's %d-byte messages", ErrOption, transport.OptHandshake, n, tmax)
	}
	return nil
}

// errGreeted is what delivering a valid hello returns: the receive goes on
// with the next message.
var errGreeted = errors.New("hello received")

// handshakeOn reports whether a channel over t says hello: as cfg says, or
// as the transport does by default.
func handshakeOn(cfg *transport.Config, t any) bool {
	d, ok := t.(transport.HandshakeDefaulter)
	return cfg.Handshake(ok && d.HandshakeByDefault())
}

// helloFor builds the hello for element type T and codec name.
func helloFor[T any](codecName string) []byte {
	b := []byte(handshakeMagic)
	b = binary.BigEndian.AppendUint16(b, handshakeVersion)
	b = append(b, byte(len(codecName)))
	b = append(b, codecName...)
	return binary.BigEndian.AppendUint64(b, Fingerprint(reflect.TypeFor[T]()))
}

// checkHello compares a peer's hello with ours.
func checkHello(peer, ours []byte) error {
	if len(peer) < len(handshakeMagic)+2+1 || string(peer[:len(handshakeMagic)]) != handshakeMagic {
		return fmt.Errorf("%w: the peer's hello is malformed (%d bytes)", ErrHandshake, len(peer))
	}
	if v := binary.BigEndian.Uint16(peer[8:]); v != handshakeVersion {
		return fmt.Errorf("%w: the peer speaks wire version %d, this side %d", ErrHandshake, v, handshakeVersion)
	}
	name, fp, err := helloFields(peer)
	if err != nil {
		return err
	}
	ourName, ourFP, _ := helloFields(ours)
	switch {
	case name != ourName:
		return fmt.Errorf("%w: the peer encodes with codec %q, this side decodes %q", ErrHandshake, name, ourName)
	case fp != ourFP:
		return fmt.Errorf("%w: the peer sends another element type (fingerprint %016x, this side %016x)", ErrHandshake, fp, ourFP)
	}
	return nil
}

func helloFields(h []byte) (codecName string, fp uint64, err error) {
	n := int(h[10])
	if len(h) != 11+n+8 {
		return "", 0, fmt.Errorf("%w: the peer's hello is malformed (%d bytes)", ErrHandshake, len(h))
	}
	return string(h[11 : 11+n]), binary.BigEndian.Uint64(h[11+n:]), nil
}

// Fingerprint returns a hash of t's shape: its kind, size, and, for
// composite types, the names, order and shapes of its parts, but not its
// name or package, so that the same struct declared in two programs
// matches. Two element types with the same fingerprint encode alike under
// every built-in codec. It is the 64-bit FNV-1a hash of
// [TypeDescription](t); PROTOCOL.md §4 specifies both, for programs in
// other languages.
func Fingerprint(t reflect.Type) uint64 {
	h := fnv.New64a()
	h.Write([]byte(TypeDescription(t)))
	return h.Sum64()
}

// TypeDescription returns the description of t that its fingerprint
// hashes (PROTOCOL.md §4): "struct{ID uint32;Temp float64;}" for
// struct{ ID uint32; Temp float64 }. A type met again inside its own
// description is written "<recursive>".
func TypeDescription(t reflect.Type) string {
	var b strings.Builder
	describe(&b, t, map[reflect.Type]bool{})
	return b.String()
}

func describe(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	switch t.Kind() {
	case reflect.Struct, reflect.Array, reflect.Slice, reflect.Pointer, reflect.Map:
		if seen[t] {
			b.WriteString("<recursive>")
			return
		}
		seen[t] = true
		defer delete(seen, t)
	}
	switch t.Kind() {
	case reflect.Struct:
		b.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(b, "%s ", f.Name)
			describe(b, f.Type, seen)
			b.WriteString(";")
		}
		b.WriteString("}")
	case reflect.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		describe(b, t.Elem(), seen)
	case reflect.Slice:
		b.WriteString("[]")
		describe(b, t.Elem(), seen)
	case reflect.Pointer:
		b.WriteString("*")
		describe(b, t.Elem(), seen)
	case reflect.Map:
		b.WriteString("map[")
		describe(b, t.Key(), seen)
		b.WriteString("]")
		describe(b, t.Elem(), seen)
	default:
		b.WriteString(t.Kind().String())
	}
}
