package natsjs

import (
	"context"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// NewHandOffSender is NewSender for a test that hands the channel's
// sending end to another process (the conformance harness's Give): the
// returned function makes the Sender's Close publish no end marker, as the
// process it was handed to ends the stream in its place.
func NewHandOffSender[T any](ctx context.Context, c *Conn, name string, cfg ChannelConfig, opts ...ipcchan.Option) (*ipcchan.Sender[T], func(), error) {
	tx, s, err := openSender[T](ctx, c, name, cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	return tx, s.abandon, nil
}

// ParseTag, ParseInfo and ParseMeta expose the parsers of what another
// party wrote, for the fuzz tests.
func ParseTag(h string) (uint32, error) { return parseTag(h) }

func ParseInfo(b []byte) (url, token string, err error) {
	info, err := parseInfo(b)
	return info.URL, info.Token, err
}

func ParseMeta(md map[string]string) (codec, typ string, fingerprint uint64, mode Mode, err error) {
	m, err := parseMeta(md)
	return m.codec, m.typ, m.fingerprint, m.mode, err
}

// MetaFor returns the metadata a channel of T records.
func MetaFor[T any](mode Mode) map[string]string {
	cfg, _ := transport.NewConfig("test", 0, nil)
	m, _ := metaFor[T](cfg, mode)
	return m.metadata()
}

// ParseAckReply exposes the parser of an ack subject the server wrote.
func ParseAckReply(reply string) (sseq, dseq uint64, err error) { return parseAckReply(reply) }
