package codec_test

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/ipcchan/go/codec"
)

func ExampleBinary() {
	type Reading struct {
		Sensor uint16
		Value  float32
		OK     bool
	}
	c, err := codec.Binary[Reading](binary.BigEndian)
	if err != nil {
		panic(err)
	}
	b, _ := c.Append(nil, Reading{Sensor: 7, Value: 1.5, OK: true})
	fmt.Printf("% x\n", b)
	var r Reading
	c.Decode(b, &r)
	fmt.Printf("%+v\n", r)
	// Output:
	// 00 07 3f c0 00 00 01
	// {Sensor:7 Value:1.5 OK:true}
}

func ExampleDefault() {
	type Job struct {
		ID   int64
		Cost float64
	}
	type Note struct {
		Text string
		Tags []string
	}
	j, _ := codec.Default[Job]()
	n, _ := codec.Default[Note]()
	s, _ := codec.Default[string]()
	fmt.Println(j.Name(), n.Name(), s.Name())
	// Output: binary-le gob string
}

func ExampleFrameReader() {
	var stream bytes.Buffer
	fw := codec.NewFrameWriter(&stream)
	fw.WriteFrame(1, []byte("first"))
	fw.WriteFrame(2, []byte("second"))
	fr := codec.NewFrameReader(&stream, 0)
	for {
		tag, payload, err := fr.ReadFrame()
		if err != nil {
			break // io.EOF
		}
		fmt.Println(tag, string(payload))
	}
	// Output:
	// 1 first
	// 2 second
}
