package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// Start listens on addr over both UDP and TCP, on the same port, and
// returns once both listeners serve. addr must be a loopback address; with
// port 0 ("127.0.0.1:0") a port free for both transports is picked.
func (s *Server) Start(addr string) error {
	s.init()
	s.life.Lock()
	defer s.life.Unlock()
	switch {
	case s.closed:
		return errors.New("dnstest: server is closed")
	case s.started:
		return errors.New("dnstest: server already started")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dnstest: %w", err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	// This package exists for hermetic tests: never serve beyond loopback.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("dnstest: %q is not a loopback address", host)
	}
	pc, ln, err := listenPair(host, port)
	if err != nil {
		return err
	}

	udpUp, tcpUp := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 2)
	udp := &dns.Server{
		PacketConn:        pc,
		Handler:           s,
		UDPSize:           dns.MaxMsgSize, // read any query, however large
		MsgAcceptFunc:     acceptQueries,
		NotifyStartedFunc: func() { close(udpUp) },
	}
	tcp := &dns.Server{
		Listener:          ln,
		Handler:           s,
		MsgAcceptFunc:     acceptQueries,
		NotifyStartedFunc: func() { close(tcpUp) },
	}
	for _, srv := range []*dns.Server{udp, tcp} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			errc <- srv.ActivateAndServe()
		}()
	}
	for pending := 2; pending > 0; {
		select {
		case <-udpUp:
			udpUp, pending = nil, pending-1
		case <-tcpUp:
			tcpUp, pending = nil, pending-1
		case err := <-errc:
			// One side failed before serving: closing both sockets makes the
			// other one return too.
			pc.Close()
			ln.Close()
			s.wg.Wait()
			return fmt.Errorf("dnstest: serve %s: %w", addr, err)
		}
	}
	s.started = true
	s.servers = []*dns.Server{udp, tcp}
	s.addr = pc.LocalAddr().String()
	return nil
}

// listenPair binds UDP and TCP on the same host and port. For port 0 the
// kernel picks a free UDP port, which may be taken for TCP: retry a few
// times with another one.
func listenPair(host, port string) (net.PacketConn, net.Listener, error) {
	if port != "0" {
		addr := net.JoinHostPort(host, port)
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			pc.Close()
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		return pc, ln, nil
	}
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("dnstest: no port free for both UDP and TCP: %w", lastErr)
}

// acceptQueries replaces miekg's default filter, which answers FORMERR or
// NOTIMP itself: letting every query reach ServeDNS puts it in the query
// log. Responses (QR=1) are still ignored, so two servers cannot loop.
func acceptQueries(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// Addr returns the address the server listens on, e.g. "127.0.0.1:40123",
// or "" before Start.
func (s *Server) Addr() string {
	s.life.Lock()
	defer s.life.Unlock()
	return s.addr
}

// Close stops the listeners and waits until they and every query in flight
// are done; a delayed answer is abandoned. It may be called more than once,
// and on a server that never started.
func (s *Server) Close() error {
	s.init()
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.closing)
	if !s.started {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range s.servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}
