package main

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

func rd(client int, call, ret int64, key string, found bool, value string) op {
	return op{client: client, in: kvInput{Op: "read", Key: key}, out: kvOutput{Found: found, Value: value},
		call: call, ret: ret, outcome: outcomeOK}
}

func wr(client int, call, ret int64, key, value, outcome string) op {
	return op{client: client, in: kvInput{Op: "write", Key: key, Value: value}, call: call, ret: ret, outcome: outcome}
}

func cas(client int, call, ret int64, key, expected, value string, ok bool, outcome string) op {
	return op{client: client, in: kvInput{Op: "cas", Key: key, Expected: expected, Value: value},
		out: kvOutput{CasOK: ok}, call: call, ret: ret, outcome: outcome}
}

func linearizable(ops []op) bool {
	return porcupine.CheckOperations(kvModel, toPorcupine(ops))
}

// The checker accepts what a linearizable store can produce and rejects
// the anomalies the fault test exists to find.
func TestModel(t *testing.T) {
	cases := []struct {
		name string
		ops  []op
		want bool
	}{
		{"sequential write then read", []op{
			wr(0, 0, 10, "k", "a", outcomeOK), rd(1, 20, 30, "k", true, "a")}, true},
		{"stale read after an acknowledged write", []op{
			wr(0, 0, 10, "k", "a", outcomeOK), wr(0, 20, 30, "k", "b", outcomeOK),
			rd(1, 40, 50, "k", true, "a")}, false},
		{"lost acknowledged write: the key reads as absent later", []op{
			wr(0, 0, 10, "k", "a", outcomeOK), rd(1, 20, 30, "k", false, "")}, false},
		{"concurrent write may be seen or not", []op{
			wr(0, 0, 100, "k", "a", outcomeOK), rd(1, 10, 20, "k", false, ""),
			rd(2, 30, 40, "k", true, "a")}, true},
		{"read going back in time", []op{
			wr(0, 0, 100, "k", "a", outcomeOK), rd(1, 10, 20, "k", true, "a"),
			rd(2, 30, 40, "k", false, "")}, false},
		{"failed write never happened", []op{
			wr(0, 0, 10, "k", "a", outcomeFail), rd(1, 20, 30, "k", true, "a")}, false},
		{"unknown write may take effect later", []op{
			wr(0, 0, 10, "k", "a", outcomeUnknown), rd(1, 20, 30, "k", false, ""),
			rd(1, 40, 50, "k", true, "a")}, true},
		{"unknown write takes effect at most once", []op{
			wr(0, 0, 10, "k", "a", outcomeUnknown), wr(1, 20, 30, "k", "b", outcomeOK),
			rd(1, 40, 50, "k", true, "a"), rd(1, 60, 70, "k", true, "b")}, false},
		{"cas succeeds only on the expected value", []op{
			wr(0, 0, 10, "k", "a", outcomeOK), cas(1, 20, 30, "k", "a", "b", true, outcomeOK),
			cas(2, 40, 50, "k", "a", "c", false, outcomeOK), rd(0, 60, 70, "k", true, "b")}, true},
		{"cas reporting success on the wrong value", []op{
			wr(0, 0, 10, "k", "a", outcomeOK), cas(1, 20, 30, "k", "x", "b", true, outcomeOK)}, false},
		{"cas reporting failure but applied", []op{
			wr(0, 0, 10, "k", "a", outcomeOK), cas(1, 20, 30, "k", "a", "b", false, outcomeOK)}, false},
		{"keys are independent", []op{
			wr(0, 0, 10, "k", "a", outcomeOK), wr(0, 20, 30, "j", "b", outcomeOK),
			rd(1, 40, 50, "k", true, "a"), rd(1, 60, 70, "j", true, "b")}, true},
	}
	for _, c := range cases {
		if got := linearizable(c.ops); got != c.want {
			t.Errorf("%s: linearizable = %v, want %v", c.name, got, c.want)
		}
	}
}

// Reads without an answer are dropped; unknown writes stay pending to the
// end of the history; failed operations are dropped.
func TestToPorcupine(t *testing.T) {
	ops := []op{
		wr(0, 0, 10, "k", "a", outcomeOK),
		{client: 1, in: kvInput{Op: "read", Key: "k"}, call: 5, ret: 15, outcome: outcomeUnknown},
		wr(2, 20, 30, "k", "b", outcomeUnknown),
		wr(3, 40, 50, "k", "c", outcomeFail),
	}
	p := toPorcupine(ops)
	if len(p) != 2 {
		t.Fatalf("got %d operations, want 2", len(p))
	}
	if p[1].Return <= 50 || !p[1].Output.(kvOutput).Unknown {
		t.Errorf("unknown write: return %d, output %+v; want pending past the end", p[1].Return, p[1].Output)
	}
}
