package endpoints

import (
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// senderOver returns a Sender over t with the channel options of cfg,
// closing t if that fails — without the end-of-stream marker or shutdown of
// a sender that never was.
func senderOver[T any](t transport.MsgSender, cfg *transport.Config) (*ipcchan.Sender[T], error) {
	err := checkTagOption(cfg, t, t.String())
	var tx *ipcchan.Sender[T]
	if err == nil {
		tx, err = ipcchan.NewSender[T](t, cfg.Options(transport.SenderOptions)...)
	}
	if err != nil {
		if h, ok := t.(interface{ setHandedOff() }); ok {
			h.setHandedOff()
		}
		t.Close()
		return nil, err
	}
	return tx, nil
}

// receiverOver returns a Receiver over t with the channel options of cfg,
// closing t if that fails.
func receiverOver[T any](t transport.MsgReceiver, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	rx, err := ipcchan.NewReceiver[T](t, cfg.Options(transport.ReceiverOptions)...)
	if err != nil {
		t.Close()
		return nil, err
	}
	return rx, nil
}
