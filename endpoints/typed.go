package endpoints

import "github.com/ipcchan/go/ipcchan"

// senderOver returns a Sender over t, closing t if that fails — without
// the end-of-stream marker or shutdown of a sender that never was.
func senderOver[T any](t ipcchan.MsgSender, opts []ipcchan.Option) (*ipcchan.Sender[T], error) {
	tx, err := ipcchan.NewSender[T](t, opts...)
	if err != nil {
		if h, ok := t.(interface{ setHandedOff() }); ok {
			h.setHandedOff()
		}
		t.Close()
		return nil, err
	}
	return tx, nil
}

// receiverOver returns a Receiver over t, closing t if that fails.
func receiverOver[T any](t ipcchan.MsgReceiver, opts []ipcchan.Option) (*ipcchan.Receiver[T], error) {
	rx, err := ipcchan.NewReceiver[T](t, opts...)
	if err != nil {
		t.Close()
		return nil, err
	}
	return rx, nil
}
