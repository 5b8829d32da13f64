package blklog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultHandshakeTimeout bounds the NBD negotiation of a connection: QEMU
// negotiates in milliseconds, and a connection that says nothing (a port
// scanner, a stuck client) must not hold the recorder.
const DefaultHandshakeTimeout = 10 * time.Second

// nbdRepErrPolicy refuses an option "by server policy"; its message is
// shown by QEMU ("Requested export not available" and the text).
const nbdRepErrPolicy = nbdRepFlagError | 2

// busyMessage is what a connection arriving during a session is told.
const busyMessage = "busy: ext3replay record serves one client and is serving another"

// Session runs one recording over a listener: see Run.
type Session struct {
	Rec              *Recorder
	HandshakeTimeout time.Duration        // 0: DefaultHandshakeTimeout
	Logf             func(string, ...any) // diagnostics (the recorder's stderr); nil: none
	// Persistent serves one client after another (qemu-nbd's -t): when a client disconnects,
	// the next one continues the same log and state, until Stop. A probe such as
	// `qemu-img info` before QEMU then no longer uses the session up.
	Persistent bool

	mu      sync.Mutex
	ln      net.Listener
	active  net.Conn
	serving bool          // a client is in transmission: new connections are told busy
	idle    chan struct{} // closed when the client in transmission leaves
	others  map[net.Conn]struct{}
	stopped bool
	clients int // clients that reached transmission
	wg      sync.WaitGroup
}

func (s *Session) logf(format string, a ...any) {
	if s.Logf != nil {
		s.Logf(format, a...)
	}
}

// Clients returns how many clients have reached transmission so far.
func (s *Session) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients
}

// Run accepts connections on ln until one client has negotiated and its session has ended (with
// Persistent: until Stop), then closes ln. A connection that fails or times out during the
// negotiation is dropped and Run waits for the next one (nothing was logged for it). Connections
// arriving while a client is in transmission get an NBD error reply saying busy and are closed;
// those arriving while another connection negotiates wait their turn. Run returns nil when the
// client disconnected or Stop was called, else the error that ended the session.
func (s *Session) Run(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.others = map[net.Conn]struct{}{}
	stopped := s.stopped
	s.mu.Unlock()
	// One goroutine accepts for the whole run: a connection is queued for the loop below while
	// nobody is in transmission, and told busy while somebody is.
	queue := make(chan net.Conn, 16)
	defer func() {
		s.closeAll() // the accepting goroutine has returned: nothing more is queued
		for {
			select {
			case c := <-queue:
				c.Close()
			default:
				return
			}
		}
	}()
	if stopped {
		return nil
	}
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	acceptErr := make(chan error, 1)
	s.wg.Add(1)
	go s.accept(ln, queue, acceptErr, timeout)
	for {
		var c net.Conn
		select {
		case c = <-queue:
		case err := <-acceptErr:
			if s.isStopped() {
				return nil
			}
			return err
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.active = c
		s.mu.Unlock()
		br, bw := bufio.NewReaderSize(c, 1<<20), bufio.NewWriterSize(c, 1<<20)
		c.SetDeadline(time.Now().Add(timeout))
		if s.Rec.start.IsZero() {
			s.Rec.start = time.Now()
		}
		done, err := s.Rec.handshake(br, bw)
		if err != nil || done {
			c.Close()
			if s.isStopped() {
				return nil
			}
			why := "left during the NBD negotiation"
			if err != nil {
				why = err.Error()
			}
			s.logf("ext3replay record: dropped a connection before transmission (%s); waiting for a client", why)
			continue
		}
		c.SetDeadline(time.Time{})
		// From here on this is the client: others are told busy, those queued meanwhile too.
		s.mu.Lock()
		s.serving = true
		s.idle = make(chan struct{})
		s.clients++
		n := s.clients
		s.mu.Unlock()
		for drained := false; !drained; {
			select {
			case q := <-queue:
				s.refuse(q, queue, timeout)
			default:
				drained = true
			}
		}
		before := s.Rec.Stats().Requests
		err = s.Rec.transmission(br, bw)
		c.Close()
		s.mu.Lock()
		s.serving = false
		close(s.idle)
		s.active = nil
		s.mu.Unlock()
		if s.isStopped() {
			return nil
		}
		var pe *ProtocolError
		if s.Persistent && errors.As(err, &pe) {
			// One client broke the protocol: what it sent before is logged and answered; the
			// next client continues the same log (a log or state failure still ends the run).
			s.logf("ext3replay record: client %d dropped: %v; waiting for the next (--persistent)", n, err)
			continue
		}
		if err != nil || !s.Persistent {
			return err
		}
		s.logf("ext3replay record: client %d disconnected after %d requests; waiting for the next (--persistent)", n, s.Rec.Stats().Requests-before)
	}
}

// accept hands every connection on ln to queue while no client is in transmission, and tells
// it busy otherwise, until ln is closed (its error goes to errc).
func (s *Session) accept(ln net.Listener, queue chan<- net.Conn, errc chan<- error, timeout time.Duration) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		// Under the lock: Run sets serving and then drains the queue, so a connection is
		// either queued before that (and refused by the drain) or sees serving.
		s.mu.Lock()
		queued := false
		if s.others == nil {
			s.mu.Unlock()
			c.Close()
			continue
		}
		if !s.serving {
			select {
			case queue <- c:
				queued = true
			default: // a flood of connections: the excess is told busy
			}
		}
		s.mu.Unlock()
		if !queued {
			s.refuse(c, queue, timeout)
		}
	}
}

// busyGrace is how long a connection arriving during a client's session waits for that session
// to end before it is told busy: a client that disconnects and reconnects at once (a probe, then
// QEMU, with --persistent) must not race the recorder noticing the disconnection.
const busyGrace = time.Second

// refuse tells c busy, on its own goroutine, and closes it, unless the client being served
// leaves within busyGrace: then c is queued for Run instead.
func (s *Session) refuse(c net.Conn, queue chan<- net.Conn, timeout time.Duration) {
	s.mu.Lock()
	if s.others == nil {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.others[c] = struct{}{}
	idle := s.idle
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if idle != nil && s.Persistent { // a single-client session ends anyway
			t := time.NewTimer(busyGrace)
			select {
			case <-idle:
				t.Stop()
				s.mu.Lock()
				queued := false
				if !s.serving && s.others != nil {
					select {
					case queue <- c:
						queued = true
						delete(s.others, c)
					default:
					}
				}
				s.mu.Unlock()
				if queued {
					return
				}
			case <-t.C:
			}
		}
		s.logf("ext3replay record: refused a second connection (%s)", busyMessage)
		c.SetDeadline(time.Now().Add(timeout))
		refuseBusy(c)
		c.Close()
		s.mu.Lock()
		delete(s.others, c)
		s.mu.Unlock()
	}()
}

// refuseBusy greets a client as a fixed-newstyle server and answers each of its options with
// an error carrying busyMessage, until it aborts, asks for an export by name (which has no
// error reply: the connection is closed) or a few options have been refused.
func refuseBusy(c io.ReadWriter) {
	be := binary.BigEndian
	var g [18]byte
	be.PutUint64(g[0:], nbdMagic)
	be.PutUint64(g[8:], nbdOptMagic)
	be.PutUint16(g[16:], nbdFlagFixedNewstyle|nbdFlagNoZeroes)
	if _, err := c.Write(g[:]); err != nil {
		return
	}
	var cf [4]byte
	if _, err := io.ReadFull(c, cf[:]); err != nil {
		return
	}
	for i := 0; i < 8; i++ {
		var oh [16]byte
		if _, err := io.ReadFull(c, oh[:]); err != nil || be.Uint64(oh[0:]) != nbdOptMagic {
			return
		}
		opt, n := be.Uint32(oh[8:]), be.Uint32(oh[12:])
		if n > nbdMaxOption {
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
			return
		}
		if opt == nbdOptExportName {
			return
		}
		typ, msg := uint32(nbdRepErrPolicy), []byte(busyMessage)
		if opt == nbdOptAbort {
			typ, msg = nbdRepAck, nil
		}
		var h [20]byte
		be.PutUint64(h[0:], nbdRepMagic)
		be.PutUint32(h[8:], opt)
		be.PutUint32(h[12:], typ)
		be.PutUint32(h[16:], uint32(len(msg)))
		if _, err := c.Write(append(h[:], msg...)); err != nil || opt == nbdOptAbort {
			return
		}
	}
}

func (s *Session) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Stop ends Run: the listener and every connection are closed; the records logged so far stay.
func (s *Session) Stop() {
	s.mu.Lock()
	s.stopped = true
	ln, active := s.ln, s.active
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if active != nil {
		active.Close()
	}
}

// closeAll closes the listener (unlinking a Unix socket) and any refused connection still
// open, and waits for their goroutines.
func (s *Session) closeAll() {
	s.mu.Lock()
	ln := s.ln
	others := s.others
	s.others = nil
	s.mu.Unlock()
	ln.Close()
	for c := range others {
		c.Close()
	}
	s.wg.Wait()
}

// FinishLog ends the log of a recording whose session ended with err: a clean end (nil) writes
// the end record; a failure (the state file could not be written: disk full) writes a mark
// naming it and leaves the end record out, so that the log reads as damaged rather than as a
// complete run ending with a write the guest never saw acknowledged.
func FinishLog(lw *Writer, err error) error {
	if err == nil {
		return lw.Close()
	}
	msg := []byte(fmt.Sprintf("ext3replay record: session failed: %v", err))
	msg = msg[:min(len(msg), 4096)]
	werr := lw.Write(&Record{Type: TypeMark, Length: uint32(len(msg)), Data: msg})
	cerr := lw.CloseDamaged()
	return errors.Join(werr, cerr)
}
