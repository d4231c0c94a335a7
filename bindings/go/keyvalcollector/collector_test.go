package keyvalcollector

import (
	"strings"
	"testing"

	"github.com/keyval/keyval/bindings/go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Registered the way a service would, linted by client_golang's own
// linter, and gathered: histograms in seconds, the health gauges, and
// keyval_up 0 once the store is closed.
func TestCollector(t *testing.T) {
	db, err := keyval.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if err := db.Set([]byte{byte(i), 1}, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	c := New(db, "test")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	found := map[string]bool{}
	for _, f := range families {
		found[f.GetName()] = true
		if f.GetName() == "keyval_operation_duration_seconds" {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "op" && l.GetValue() == "write" && m.GetHistogram().GetSampleCount() != 50 {
						t.Errorf("write histogram count %d", m.GetHistogram().GetSampleCount())
					}
				}
			}
		}
	}
	for _, want := range []string{"keyval_operation_duration_seconds", "keyval_poisoned", "keyval_up", "keyval_puts_total", "keyval_recovery_duration_seconds"} {
		if !found[want] {
			t.Errorf("%s missing from the scrape", want)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP keyval_up 1: the store is open and answered (metrics of a closed store are an error, not 0).
# TYPE keyval_up gauge
keyval_up{db="test"} 0
`), "keyval_up"); err != nil {
		t.Error(err)
	}
}

// A Raft log through NewRaft: linted, its appends counted under its label,
// and keyval_raft_up 0 once the log is closed.
func TestRaftCollector(t *testing.T) {
	l, err := keyval.OpenRaftLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		if err := l.Append([]keyval.Entry{{Index: i, Term: 1, Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	c := NewRaft(l, "node1")
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP keyval_raft_last_index Index of the last entry (0: none).
# TYPE keyval_raft_last_index gauge
keyval_raft_last_index{log="node1"} 10
# HELP keyval_raft_up 1: the log is open and answered.
# TYPE keyval_raft_up gauge
keyval_raft_up{log="node1"} 1
`), "keyval_raft_last_index", "keyval_raft_up"); err != nil {
		t.Error(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP keyval_raft_up 1: the log is open and answered.
# TYPE keyval_raft_up gauge
keyval_raft_up{log="node1"} 0
`), "keyval_raft_up"); err != nil {
		t.Error(err)
	}
}
