package endpoints

// Every descriptor-backed transport can be failed from outside, which is
// how ipcchan's WatchPeer turns a peer's exit into ErrPeerGone where the
// kernel reports nothing (datagrams) or reports it late.

// Fail makes waits return err once queued data is read; see transport.Failer.
func (r *streamReceiver) Fail(err error) { r.fd.Fail(err) }

// Fail makes waits for room return err; see transport.Failer.
func (s *streamSender) Fail(err error) { s.fd.Fail(err) }

// Fail makes waits return err once queued datagrams are read.
func (r *dgramReceiver) Fail(err error) { r.fd.Fail(err) }

// Fail makes waits for room return err.
func (s *dgramSender) Fail(err error) { s.fd.Fail(err) }

// Byte streams hold the connection handshake by default (see
// transport.HandshakeTag): a pipe or socket may reach a process built with
// another element type.

// HandshakeByDefault reports that the stream expects a hello.
func (r *streamReceiver) HandshakeByDefault() bool { return r.framing.Tagged() }

// HandshakeByDefault reports that the stream sends a hello.
func (s *streamSender) HandshakeByDefault() bool { return s.framing.Tagged() }
