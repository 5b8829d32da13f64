package blklog

import (
	"bufio"
	"encoding/binary"

	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// NBD protocol constants (NBD project, doc/proto.md).
const (
	nbdMagic            = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic         = 0x49484156454F5054 // "IHAVEOPT"
	nbdRepMagic         = 0x3e889045565a9
	nbdRequestMagic     = 0x25609513
	nbdSimpleReplyMagic = 0x67446698

	nbdFlagFixedNewstyle = 1 << 0
	nbdFlagNoZeroes      = 1 << 1

	nbdOptExportName      = 1
	nbdOptAbort           = 2
	nbdOptList            = 3
	nbdOptInfo            = 6
	nbdOptGo              = 7
	nbdOptStructuredReply = 8

	nbdRepAck        = 1
	nbdRepServer     = 2
	nbdRepInfo       = 3
	nbdRepFlagError  = 1 << 31
	nbdRepErrUnsup   = nbdRepFlagError | 1
	nbdRepErrInvalid = nbdRepFlagError | 3

	nbdInfoExport    = 0
	nbdInfoBlockSize = 3

	nbdTFlagHasFlags        = 1 << 0
	nbdTFlagSendFlush       = 1 << 2
	nbdTFlagSendFUA         = 1 << 3
	nbdTFlagSendTrim        = 1 << 5
	nbdTFlagSendWriteZeroes = 1 << 6

	nbdCmdFlagFUA    = 1 << 0
	nbdCmdFlagNoHole = 1 << 1

	nbdCmdRead        = 0
	nbdCmdWrite       = 1
	nbdCmdDisc        = 2
	nbdCmdFlush       = 3
	nbdCmdTrim        = 4
	nbdCmdWriteZeroes = 6

	nbdEIO    = 5
	nbdEINVAL = 22

	// nbdMaxRequest is the largest payload the recorder accepts (and
	// advertises as maximum block size).
	nbdMaxRequest = 32 << 20
	// nbdMaxOption bounds option data during the handshake.
	nbdMaxOption = 64 << 10
)

// Sink is where a Recorder puts the requests it serves, in order: the log file (*Writer), or
// a tee that also feeds a live analysis. Sync must make every record written so far durable:
// the recorder calls it before acknowledging a flush or a FUA write.
type Sink interface {
	Write(r *Record) error
	Sync() error
}

// Recorder serves a disk over NBD and logs every request. The disk is a
// state file the caller prepared (a copy of the starting image); requests
// are handled one at a time, in arrival order, which is the log order.
type Recorder struct {
	State    *os.File // the evolving disk; read and written
	Size     int64    // bytes
	Log      Sink
	ReadData bool // also log the payload of reads

	start time.Time
	mu    sync.Mutex // guards Stats against concurrent Snapshot
	stats RecordStats
}

// RecordStats counts what a Recorder served.
type RecordStats struct {
	Requests, Reads, Writes, Flushes, Trims, WriteZeroes, FUA, Errors int64
	ReadBytes, WriteBytes                                             int64
}

// Stats returns the counts so far.
func (rec *Recorder) Stats() RecordStats {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.stats
}

// ProtocolError is a client that broke the NBD protocol.
type ProtocolError struct {
	Stage string // "handshake" or "transmission"
	Msg   string
}

func (e *ProtocolError) Error() string { return "nbd " + e.Stage + ": " + e.Msg }

// Serve runs one NBD session on conn until the client disconnects (nil
// error: NBD_CMD_DISC or EOF between requests) or something fails. It does
// not close conn. Every request that got a reply is in the log; FLUSH and FUA
// writes are answered only after log and state file are synced.
func (rec *Recorder) Serve(conn io.ReadWriter) error {
	if rec.start.IsZero() {
		rec.start = time.Now()
	}
	br := bufio.NewReaderSize(conn, 1<<20)
	bw := bufio.NewWriterSize(conn, 1<<20)
	done, err := rec.handshake(br, bw)
	if err != nil || done {
		return err
	}
	return rec.transmission(br, bw)
}

func (rec *Recorder) transmissionFlags() uint16 {
	return nbdTFlagHasFlags | nbdTFlagSendFlush | nbdTFlagSendFUA | nbdTFlagSendTrim | nbdTFlagSendWriteZeroes
}

// handshake runs the fixed newstyle negotiation. done reports a client that
// left without entering transmission (NBD_OPT_ABORT or EOF).
func (rec *Recorder) handshake(br *bufio.Reader, bw *bufio.Writer) (done bool, err error) {
	be := binary.BigEndian
	var b [18]byte
	be.PutUint64(b[0:], nbdMagic)
	be.PutUint64(b[8:], nbdOptMagic)
	be.PutUint16(b[16:], nbdFlagFixedNewstyle|nbdFlagNoZeroes)
	bw.Write(b[:])
	if err := bw.Flush(); err != nil {
		return false, err
	}
	var cf [4]byte
	if _, err := io.ReadFull(br, cf[:]); err != nil {
		return false, &ProtocolError{"handshake", fmt.Sprintf("reading client flags: %v", err)}
	}
	clientFlags := be.Uint32(cf[:])
	if clientFlags&^uint32(nbdFlagFixedNewstyle|nbdFlagNoZeroes) != 0 {
		return false, &ProtocolError{"handshake", fmt.Sprintf("unknown client flags %#x", clientFlags)}
	}
	noZeroes := clientFlags&nbdFlagNoZeroes != 0
	reply := func(opt, typ uint32, data []byte) error {
		var h [20]byte
		be.PutUint64(h[0:], nbdRepMagic)
		be.PutUint32(h[8:], opt)
		be.PutUint32(h[12:], typ)
		be.PutUint32(h[16:], uint32(len(data)))
		bw.Write(h[:])
		bw.Write(data)
		return bw.Flush()
	}
	for {
		var oh [16]byte
		if _, err := io.ReadFull(br, oh[:]); err != nil {
			if err == io.EOF {
				return true, nil
			}
			return false, &ProtocolError{"handshake", fmt.Sprintf("reading option: %v", err)}
		}
		if m := be.Uint64(oh[0:]); m != nbdOptMagic {
			return false, &ProtocolError{"handshake", fmt.Sprintf("option magic %#x, want %#x", m, uint64(nbdOptMagic))}
		}
		opt, n := be.Uint32(oh[8:]), be.Uint32(oh[12:])
		if n > nbdMaxOption {
			return false, &ProtocolError{"handshake", fmt.Sprintf("option %d carries %d bytes, limit %d", opt, n, nbdMaxOption)}
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(br, data); err != nil {
			return false, &ProtocolError{"handshake", fmt.Sprintf("reading option %d data: %v", opt, noEOF(err))}
		}
		switch opt {
		case nbdOptExportName:
			// Any export name is this disk. No option reply: size and flags.
			var r [10 + 124]byte
			be.PutUint64(r[0:], uint64(rec.Size))
			be.PutUint16(r[8:], rec.transmissionFlags())
			if noZeroes {
				bw.Write(r[:10])
			} else {
				bw.Write(r[:])
			}
			return false, bw.Flush()
		case nbdOptAbort:
			reply(opt, nbdRepAck, nil)
			return true, nil
		case nbdOptList:
			if n != 0 {
				if err := reply(opt, nbdRepErrInvalid, []byte("NBD_OPT_LIST takes no data")); err != nil {
					return false, err
				}
				continue
			}
			if err := reply(opt, nbdRepServer, []byte{0, 0, 0, 0}); err != nil { // one export, name ""
				return false, err
			}
			if err := reply(opt, nbdRepAck, nil); err != nil {
				return false, err
			}
		case nbdOptInfo, nbdOptGo:
			// u32 name length, name, u16 number of info requests, u16 each.
			if n < 6 || 4+uint64(be.Uint32(data))+2 > uint64(n) {
				if err := reply(opt, nbdRepErrInvalid, []byte("malformed NBD_OPT_INFO/GO")); err != nil {
					return false, err
				}
				continue
			}
			nl := be.Uint32(data)
			nreq := int(be.Uint16(data[4+nl:]))
			if 4+int(nl)+2+2*nreq != int(n) {
				if err := reply(opt, nbdRepErrInvalid, []byte("NBD_OPT_INFO/GO length does not match its info requests")); err != nil {
					return false, err
				}
				continue
			}
			wantBS := false
			for i := 0; i < nreq; i++ {
				if be.Uint16(data[4+nl+2+2*uint32(i):]) == nbdInfoBlockSize {
					wantBS = true
				}
			}
			var ie [12]byte
			be.PutUint16(ie[0:], nbdInfoExport)
			be.PutUint64(ie[2:], uint64(rec.Size))
			be.PutUint16(ie[10:], rec.transmissionFlags())
			if err := reply(opt, nbdRepInfo, ie[:]); err != nil {
				return false, err
			}
			if wantBS {
				var ib [14]byte
				be.PutUint16(ib[0:], nbdInfoBlockSize)
				be.PutUint32(ib[2:], SectorSize)     // minimum
				be.PutUint32(ib[6:], 4096)           // preferred
				be.PutUint32(ib[10:], nbdMaxRequest) // maximum
				if err := reply(opt, nbdRepInfo, ib[:]); err != nil {
					return false, err
				}
			}
			if err := reply(opt, nbdRepAck, nil); err != nil {
				return false, err
			}
			if opt == nbdOptGo {
				return false, nil
			}
		default:
			// Structured replies, meta contexts, TLS and the rest: the
			// client falls back to simple replies.
			if err := reply(opt, nbdRepErrUnsup, nil); err != nil {
				return false, err
			}
		}
	}
}

func (rec *Recorder) transmission(br *bufio.Reader, bw *bufio.Writer) error {
	be := binary.BigEndian
	var h [28]byte
	var rep [16]byte
	be.PutUint32(rep[0:], nbdSimpleReplyMagic)
	buf := make([]byte, 0, 1<<20)
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			if err == io.EOF {
				return nil // client went away between requests
			}
			return &ProtocolError{"transmission", fmt.Sprintf("reading request: %v", err)}
		}
		if m := be.Uint32(h[0:]); m != nbdRequestMagic {
			return &ProtocolError{"transmission", fmt.Sprintf("request magic %#x, want %#x", m, uint32(nbdRequestMagic))}
		}
		flags, typ := be.Uint16(h[4:]), be.Uint16(h[6:])
		copy(rep[8:], h[8:16]) // handle
		off, length := be.Uint64(h[16:]), be.Uint32(h[24:])
		if typ == nbdCmdDisc {
			return nil
		}
		var data []byte
		if typ == nbdCmdWrite {
			if length > nbdMaxRequest {
				return &ProtocolError{"transmission", fmt.Sprintf("write of %d bytes exceeds the advertised maximum %d", length, nbdMaxRequest)}
			}
			if cap(buf) < int(length) {
				buf = make([]byte, length)
			}
			data = buf[:length]
			if _, err := io.ReadFull(br, data); err != nil {
				return &ProtocolError{"transmission", fmt.Sprintf("reading %d bytes of write data: %v", length, noEOF(err))}
			}
		}
		var payload []byte
		errno, err := rec.handle(typ, flags, off, length, data, &buf, &payload)
		if err != nil {
			return err
		}
		be.PutUint32(rep[4:], errno)
		bw.Write(rep[:])
		if errno == 0 && typ == nbdCmdRead {
			bw.Write(payload)
		}
		// Reply now unless more requests are already waiting: batching
		// replies of pipelined requests saves syscalls.
		if br.Buffered() < len(h) {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// handle performs one request. A nonzero errno goes to the client; err
// ends the session (log or state file failure: nothing more can be trusted).
func (rec *Recorder) handle(typ, flags uint16, off uint64, length uint32, data []byte, buf *[]byte, payload *[]byte) (uint32, error) {
	rec.mu.Lock()
	rec.stats.Requests++
	rec.mu.Unlock()
	inRange := off%SectorSize == 0 && length%SectorSize == 0 && off <= uint64(rec.Size) && uint64(length) <= uint64(rec.Size)-off
	r := Record{Sector: off / SectorSize, Length: length, Flags: FlagHasTime, TimeNS: time.Since(rec.start).Nanoseconds()}
	fua := flags&nbdCmdFlagFUA != 0
	count := func(f func(s *RecordStats)) {
		rec.mu.Lock()
		f(&rec.stats)
		rec.mu.Unlock()
	}
	bad := func() (uint32, error) {
		count(func(s *RecordStats) { s.Errors++ })
		return nbdEINVAL, nil
	}
	switch typ {
	case nbdCmdRead:
		if !inRange || length > nbdMaxRequest {
			return bad()
		}
		if cap(*buf) < int(length) {
			*buf = make([]byte, length)
		}
		p := (*buf)[:length]
		if _, err := rec.State.ReadAt(p, int64(off)); err != nil {
			count(func(s *RecordStats) { s.Errors++ })
			return nbdEIO, nil
		}
		*payload = p
		r.Type = TypeRead
		if rec.ReadData {
			r.Data = p
		}
		if err := rec.Log.Write(&r); err != nil {
			return 0, err
		}
		count(func(s *RecordStats) { s.Reads++; s.ReadBytes += int64(length) })
		return 0, nil
	case nbdCmdWrite, nbdCmdWriteZeroes, nbdCmdTrim:
		if !inRange {
			return bad()
		}
		switch typ {
		case nbdCmdWrite:
			r.Type, r.Data = TypeWrite, data
		case nbdCmdWriteZeroes:
			r.Type = TypeWriteZeroes
		default:
			r.Type = TypeDiscard
		}
		if fua {
			r.Flags |= FlagFUA
		}
		// Log first: the log is the record of truth; the state file is a
		// convenience that must never be ahead of it.
		if err := rec.Log.Write(&r); err != nil {
			return 0, err
		}
		var err error
		if typ == nbdCmdWrite {
			_, err = rec.State.WriteAt(data, int64(off))
		} else {
			// Trimmed ranges read back as zeroes, so replaying a log onto
			// the base image (discard = zeroes) gives the state file exactly.
			err = zeroRange(rec.State, int64(off), int64(length))
		}
		if err != nil {
			return 0, fmt.Errorf("writing state file at byte %d: %w", off, err)
		}
		if fua {
			if err := rec.sync(); err != nil {
				return 0, err
			}
		}
		count(func(s *RecordStats) {
			switch typ {
			case nbdCmdWrite:
				s.Writes++
				s.WriteBytes += int64(length)
			case nbdCmdWriteZeroes:
				s.WriteZeroes++
			default:
				s.Trims++
			}
			if fua {
				s.FUA++
			}
		})
		return 0, nil
	case nbdCmdFlush:
		r.Type, r.Sector, r.Length = TypeFlush, 0, 0
		if err := rec.Log.Write(&r); err != nil {
			return 0, err
		}
		if err := rec.sync(); err != nil {
			return 0, err
		}
		count(func(s *RecordStats) { s.Flushes++ })
		return 0, nil
	}
	return bad()
}

// sync makes the log so far and the state file durable.
func (rec *Recorder) sync() error {
	if err := rec.Log.Sync(); err != nil {
		return err
	}
	if err := rec.State.Sync(); err != nil {
		return fmt.Errorf("fsync state file: %w", err)
	}
	return nil
}

// zeroBuf is a source of zeroes for zeroRange's fallback.
var zeroBuf = make([]byte, 1<<20)

// writeZeroes writes zeroes over [off, off+n) of f.
func writeZeroes(f *os.File, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBuf)))
		if _, err := f.WriteAt(zeroBuf[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}
