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

	mu      sync.Mutex
	ln      net.Listener
	active  net.Conn
	others  map[net.Conn]struct{}
	stopped bool
	wg      sync.WaitGroup
}

func (s *Session) logf(format string, a ...any) {
	if s.Logf != nil {
		s.Logf(format, a...)
	}
}

// Run accepts connections on ln until one client has negotiated and its session has ended, then
// closes ln. A connection that fails or times out during the negotiation is dropped and Run
// waits for the next one (nothing was logged for it). Connections arriving while a client is
// served get an NBD error reply saying busy and are closed. Run returns nil when the client
// disconnected or Stop was called, else the error that ended the session.
func (s *Session) Run(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.others = map[net.Conn]struct{}{}
	stopped := s.stopped
	s.mu.Unlock()
	defer s.closeAll()
	if stopped {
		return nil
	}
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	for {
		c, err := ln.Accept()
		if err != nil {
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
		// From here on this is the one client: others are told busy.
		s.wg.Add(1)
		go s.refuseOthers(ln, timeout)
		err = s.Rec.transmission(br, bw)
		c.Close()
		if s.isStopped() {
			return nil
		}
		return err
	}
}

// refuseOthers answers every further connection with a busy error until ln is closed.
func (s *Session) refuseOthers(ln net.Listener, timeout time.Duration) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.others == nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.others[c] = struct{}{}
		s.mu.Unlock()
		s.logf("ext3replay record: refused a second connection (%s)", busyMessage)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.SetDeadline(time.Now().Add(timeout))
			refuseBusy(c)
			c.Close()
			s.mu.Lock()
			delete(s.others, c)
			s.mu.Unlock()
		}()
	}
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
