package keyval

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	for i := 0; i < 30; i++ {
		if err := db.Set([]byte(fmt.Sprintf("k%02d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	db.Get([]byte("k01"))
	db.Get([]byte("zz"))
	if err := db.Set(nil, []byte("v")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty key: %v", err)
	}
	m, err := db.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.Puts != 30 || m.Writes != 31 || m.Gets != 2 || m.GetHits != 1 || m.Errors[StatusInvalidArgument] != 1 {
		t.Fatalf("counters: %+v", m)
	}
	if m.WriteLatency.Count != 31 || m.WriteLatency.P50 > m.WriteLatency.Max || m.Fsyncs < 30 || m.Keys != 30 {
		t.Fatalf("latency/fsyncs: %+v", m)
	}
	text, err := db.PrometheusMetrics()
	if err != nil || !strings.Contains(text, "keyval_puts_total{db=") {
		t.Fatalf("prometheus: %v\n%s", err, text)
	}
	if err := db.ResetMetrics(); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.Metrics(); m.Puts != 0 || m.WriteLatency.Count != 0 || m.Keys != 30 {
		t.Fatalf("after reset: %+v", m)
	}
	db.Close()
	if _, err := db.Metrics(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}
