// Command shmstream streams a large volume of records from a producer
// process to a consumer process through a shared-memory ring, and prints
// the throughput and the latency it achieved.
//
//	go run ./examples/shmstream                 # 1 GiB in 64 KiB records
//	go run ./examples/shmstream -total 64MiB -record 4KiB
//
// The parent is the consumer. It makes a ring in anonymous shared memory
// (a memfd: nothing is left behind), hands its sending end to a producer
// (this program re-executed with the argument "producer"), and reads.
// Each record starts with the wall-clock time it was sent and its sequence
// number; the consumer checks the order and measures each record's
// latency, and reads every byte (a checksum) as a real consumer would. The
// producer writes each record straight into the ring (Sender.SendRaw) and
// the consumer reads it in place (Receiver.RecvRaw): the data is copied
// once, by the producer, and never by the channel.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipcchan/go/endpoints"
)

func main() {
	total := flag.String("total", "1GiB", "bytes to stream")
	record := flag.String("record", "64KiB", "bytes per record")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if flag.Arg(0) == "producer" {
		err = produce(ctx)
	} else {
		err = consume(ctx, parseSize(*total), parseSize(*record))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shmstream:", err)
		os.Exit(1)
	}
}

// parseSize reads "64KiB", "1GiB", "4096".
func parseSize(s string) int {
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "shmstream: bad size %q\n", s)
		os.Exit(2)
	}
	return n * mult
}

const stamp = 16 // each record starts with the send time and the sequence number

func consume(ctx context.Context, total, record int) error {
	if record < stamp {
		return fmt.Errorf("records must hold at least %d bytes", stamp)
	}
	count := total / record
	tx, rx, err := endpoints.RingPair[[]byte](256 + 16<<20)
	if err != nil {
		return err
	}
	defer rx.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "producer")
	cmd.Env = append(os.Environ(), fmt.Sprintf("SHMSTREAM_COUNT=%d", count), fmt.Sprintf("SHMSTREAM_RECORD=%d", record))
	cmd.Stderr = os.Stderr
	if err := endpoints.Start(cmd, endpoints.Pass("records", tx)); err != nil {
		return err
	}
	if err := rx.WatchPeer(cmd.Process.Pid); err != nil { // a crashed producer ends the wait
		return err
	}
	want := map[int]uint64{record - stamp: checksum(payload(record - stamp))}
	latencies := make([]time.Duration, 0, count)
	start := time.Now()
	var bytes int64
	var seq uint64
	read := func(_ uint32, rec []byte) error { // rec is the record in the ring
		sent := int64(binary.LittleEndian.Uint64(rec))
		if got := binary.LittleEndian.Uint64(rec[8:]); got != seq {
			return fmt.Errorf("record %d arrived where %d was due", got, seq)
		}
		if sum := checksum(rec[stamp:]); sum != want[len(rec)-stamp] {
			return fmt.Errorf("record %d: checksum %#x, want %#x", seq, sum, want[len(rec)-stamp])
		}
		latencies = append(latencies, time.Duration(time.Now().UnixNano()-sent))
		bytes += int64(len(rec))
		seq++
		return nil
	}
	for {
		err := rx.RecvRaw(ctx, read)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	if len(latencies) != count {
		return fmt.Errorf("%d records arrived, %d were sent", len(latencies), count)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	fmt.Printf("%d records of %d bytes (%.2f GiB) in %v: %.2f GB/s, %.2f M records/s\n",
		count, record, float64(bytes)/(1<<30), elapsed.Round(time.Millisecond),
		float64(bytes)/elapsed.Seconds()/1e9, float64(count)/elapsed.Seconds()/1e6)
	// The producer outruns the consumer, so records wait in a full ring:
	// the latency includes that queueing.
	fmt.Printf("latency from send to receipt (queueing in the ring included): p50 %v, p99 %v, max %v\n",
		pct(0.5), pct(0.99), latencies[len(latencies)-1])
	return nil
}

func produce(ctx context.Context) error {
	count, _ := strconv.Atoi(os.Getenv("SHMSTREAM_COUNT"))
	record, _ := strconv.Atoi(os.Getenv("SHMSTREAM_RECORD"))
	tx, err := endpoints.InheritSender[[]byte]("records")
	if err != nil {
		return err
	}
	defer tx.Close() // the end-of-stream record
	body := payload(record - stamp)
	for seq := range uint64(count) {
		err := tx.SendRaw(ctx, 0, record, func(rec []byte) (int, error) { // rec is room in the ring
			copy(rec[stamp:], body) // the data, written straight into the ring
			binary.LittleEndian.PutUint64(rec[8:], seq)
			binary.LittleEndian.PutUint64(rec, uint64(time.Now().UnixNano()))
			return record, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// payload is the data every record carries after its stamp.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// checksum reads every byte of b, as a consumer that uses the data would.
func checksum(b []byte) uint64 {
	var sum uint64
	for len(b) >= 8 {
		sum = sum*31 + binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	for _, c := range b {
		sum = sum*31 + uint64(c)
	}
	return sum
}
