// Command cpeer replaces one side of a classic C program with Go, leaving
// the C program exactly as it is.
//
// The C side (embedded below, built with gcc on the fly) is written the
// textbook way: it writes a struct reading { int id; double value; char
// unit[8]; } to a FIFO for every sample, and posts alerts as full 256-byte
// text buffers on a POSIX message queue with a priority. This program reads
// both as typed Go channels: the FIFO with fixed-size records and the C
// struct layout, the queue in raw mode with the priority as the tag. It
// needs gcc; without it, it says so and exits.
//
//	go run ./examples/cpeer -samples 20
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

const sensorC = `
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct reading { int id; double value; char unit[8]; };

int main(int argc, char **argv) {
	int n = atoi(argv[3]);
	int fd = open(argv[1], O_WRONLY);
	mqd_t q = mq_open(argv[2], O_WRONLY);
	if (fd < 0 || q == (mqd_t)-1) { perror("open"); return 1; }
	for (int i = 0; i < n; i++) {
		struct reading r;
		memset(&r, 0, sizeof r);
		r.id = i;
		r.value = 20.0 + (i % 7) * 1.5;
		strcpy(r.unit, "degC");
		write(fd, &r, sizeof r);
		if (r.value > 27) {
			char alert[256] = {0};
			snprintf(alert, sizeof alert, "sample %d is hot: %.1f", i, r.value);
			mq_send(q, alert, sizeof alert, r.value > 28 ? 9 : 1);
		}
	}
	return 0;
}
`

// Reading is the C side's struct reading, field for field.
type Reading struct {
	ID    int32
	Value float64
	Unit  string `c:"char[8]"`
}

func main() {
	samples := flag.Int("samples", 20, "samples the C sensor writes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *samples); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, samples int) error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		fmt.Println("cpeer needs gcc to build its C sensor; none is installed")
		return nil
	}
	dir, err := os.MkdirTemp("", "cpeer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildSensor(gcc, dir)
	if err != nil {
		return err
	}

	// The objects the C program opens: a FIFO and a queue of 256-byte
	// messages. (In real life its side may have made them; Open* attach
	// to existing ones the same way.)
	fifo := filepath.Join(dir, "readings")
	if err := endpoints.CreateFIFO(fifo); err != nil {
		return err
	}
	queue := fmt.Sprintf("/cpeer-%d", os.Getpid())
	if err := endpoints.CreateMQ(queue, endpoints.MQAttr{MaxMsgs: 8, MsgSize: 256}); err != nil {
		return err
	}
	defer endpoints.RemoveMQ(queue)
	alerts, err := endpoints.OpenMQReceiver[string](queue, ipcchan.WithCodec(codec.CText(256)), ipcchan.WithForeignPeer())
	if err != nil {
		return err
	}
	defer alerts.Close()

	cmd := exec.CommandContext(ctx, bin, fifo, queue, fmt.Sprint(samples))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()

	layout, err := codec.CStruct[Reading]()
	if err != nil {
		return err
	}
	size := layout.(codec.SizedCodec).Size()
	readings, err := endpoints.OpenFIFOReceiver[Reading](ctx, fifo,
		ipcchan.WithFraming(codec.FixedRecords(size)), ipcchan.WithCodec(layout))
	if err != nil {
		return err
	}
	defer readings.Close()

	return relay(ctx, alerts, readings)
}

// relay prints what the C side sends on both channels until it closes the
// FIFO, then the alerts still queued.
func relay(ctx context.Context, alerts *ipcchan.Receiver[string], readings *ipcchan.Receiver[Reading]) error {
	// Both channels in one loop: alerts first when both are ready (the
	// queue itself hands out priority 9 before priority 1).
	for {
		var r Reading
		var alert string
		i, err := ipcchan.SelectFirst(ctx,
			ipcchan.OnRecv(alerts, func(a string) { alert = a }),
			ipcchan.OnRecv(readings, func(v Reading) { r = v }))
		switch {
		case i == 1 && err != nil: // io.EOF: the sensor closed the FIFO
			for {
				a, err := alerts.TryRecv()
				if err != nil {
					return nil
				}
				fmt.Printf("alert: %s\n", a)
			}
		case err != nil:
			return err
		case i == 0:
			fmt.Printf("alert: %s\n", alert)
		default:
			fmt.Printf("reading %2d: %.1f %s\n", r.ID, r.Value, r.Unit)
		}
	}
}

// buildSensor compiles the C side into dir and returns the program's path.
func buildSensor(gcc, dir string) (string, error) {
	src, bin := filepath.Join(dir, "sensor.c"), filepath.Join(dir, "sensor")
	if err := os.WriteFile(src, []byte(sensorC), 0o600); err != nil {
		return "", err
	}
	if out, err := exec.Command(gcc, "-O2", "-o", bin, src, "-lrt").CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %v\n%s", err, out)
	}
	return bin, nil
}
