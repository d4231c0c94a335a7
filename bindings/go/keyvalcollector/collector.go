// Package keyvalcollector exposes a KeyVal store's or Raft log's metrics to
// Prometheus through client_golang:
//
//	prometheus.MustRegister(keyvalcollector.New(db, "main"))
//	prometheus.MustRegister(keyvalcollector.NewRaft(raftLog, "node1"))
//
// On every scrape it reads db.PrometheusMetrics() (counters ending in
// _total, latency histograms in seconds, gauges in bytes and seconds,
// keyval_poisoned and keyval_up) and hands the samples to the registry as
// constant metrics, labelled db="<directory>". A closed store is reported
// as keyval_up 0 rather than as a scrape error. NewRaft does the same for a
// RaftLog (keyval.RaftLog.PrometheusMetrics: keyval_raft_* families
// labelled log="<label>", and keyval_raft_up 0 once the log is closed);
// hashicorp/raft users get the log from raftstore.Store.RaftLog.
//
// It is its own module so that the binding itself does not depend on
// client_golang.
//
// Thread safety: a Collector may be scraped from many goroutines at once.
package keyvalcollector

import (
	"fmt"
	"strings"

	"github.com/keyval/keyval/bindings/go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Collector is a prometheus.Collector over one KeyVal store or Raft log.
type Collector struct {
	text  func() (string, error)
	label string
	up    *prometheus.Desc
}

// New returns a collector for db; label is the value of the db label of
// keyval_up when the store cannot answer (the others carry the store's
// own directory). Register it once per store.
func New(db *keyval.DB, label string) *Collector {
	return &Collector{
		text:  db.PrometheusMetrics,
		label: label,
		up: prometheus.NewDesc("keyval_up",
			"1: the store is open and answered (metrics of a closed store are an error, not 0).",
			[]string{"db"}, nil),
	}
}

// NewRaft returns a collector for a Raft log; every sample is labelled
// log="<label>" (the log's directory if label is empty), keyval_raft_up
// included. Register it once per log.
func NewRaft(log *keyval.RaftLog, label string) *Collector {
	return &Collector{
		text:  func() (string, error) { return log.PrometheusMetrics(label) },
		label: label,
		up: prometheus.NewDesc("keyval_raft_up",
			"1: the log is open and answered.",
			[]string{"log"}, nil),
	}
}

// Describe sends nothing: the families come from the store at scrape time,
// which makes this an unchecked collector (see prometheus.Collector).
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the store's metrics and sends them as constant metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	text, err := c.text()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, c.label)
		return
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.up, fmt.Errorf("keyval metrics text: %w", err))
		return
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var names, values []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
				values = append(values, l.GetValue())
			}
			desc := prometheus.NewDesc(name, f.GetHelp(), names, nil)
			var metric prometheus.Metric
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				metric, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), values...)
			case dto.MetricType_GAUGE:
				metric, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), values...)
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				buckets := make(map[float64]uint64, len(h.GetBucket()))
				for _, b := range h.GetBucket() {
					buckets[b.GetUpperBound()] = b.GetCumulativeCount()
				}
				metric, err = prometheus.NewConstHistogram(desc, h.GetSampleCount(), h.GetSampleSum(), buckets, values...)
			default:
				err = fmt.Errorf("unexpected metric type %v", f.GetType())
			}
			if err != nil {
				metric = prometheus.NewInvalidMetric(desc, err)
			}
			ch <- metric
		}
	}
}
