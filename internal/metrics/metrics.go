// Package metrics serves Prometheus metrics: the /metrics handler and the
// listener that the --metrics flags of phala-node, pruntime and pherry
// start. It owns no metric itself; each component registers its own on a
// *prometheus.Registry it is given (internal/chain/metrics for the chain
// application, internal/enclave/enginemetrics for pRuntime, the relayer's
// Collector for pherry), so several components run in one process (tests,
// devnet) without sharing state. docs/metrics.md lists every metric.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry holding the Go runtime and process
// collectors (go_*, process_*), to which a component adds its own.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves g in Prometheus' text format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Server serves /metrics on one address.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen starts serving g at addr (host:port; port 0 picks one) under
// /metrics. Errors: the address cannot be listened on.
func Listen(addr string, g prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(g))
	s := &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
			log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	if log != nil {
		log.Info("serving metrics", "url", s.URL())
	}
	return s, nil
}

// Addr returns the address listened on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the metrics URL (http://host:port/metrics).
func (s *Server) URL() string { return "http://" + s.Addr() + "/metrics" }

// Close stops the server within 5 s.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
