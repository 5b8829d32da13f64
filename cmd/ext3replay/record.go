package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/spf13/cobra"
)

type recordOptions struct {
	image, log, socket, listen, state string
	readData, allowRemote             bool
	force, persistent                 bool
	analyze, metadata, split          bool   // --analyze: print operations live (record_analyze.go)
	splitSet                          bool   // --split-at-flush given on the command line
	format, analyzeOutput             string // --analyze's output
	handshakeTimeout                  time.Duration
}

func newRecordCmd() *cobra.Command {
	var o recordOptions
	cmd := &cobra.Command{
		Use:   "record --image BASE --log OUT.zst (--socket PATH | --listen 127.0.0.1:PORT) [--state RUN.img]",
		Short: "Serve a disk image over NBD to QEMU and log every block request",
		Long: `record serves BASE as an NBD export (fixed newstyle, simple replies) to one
client — QEMU's own NBD driver — and writes every request it receives, with
the payload of writes, to a native log (docs/log-format.md). BASE is never
modified: the disk the guest sees lives in a sparse copy, the state file
(default: OUT with .zst replaced by .state.img). Before a FLUSH or a FUA
write is acknowledged, the log so far and the state file are synced. A raw
BASE with more than 1 GiB of holes is copied extent by extent
(SEEK_DATA/SEEK_HOLE) and identified by its size and the hash of its first
64 KiB only: hashing a 1 TiB hole would delay "ready" by many minutes.

One client is served; with --persistent (qemu-nbd's -t) one client after
another, into the same log and state, until SIGINT/SIGTERM: a "qemu-img info"
probe before QEMU then does not use the session up. A connection that does
not finish the NBD negotiation within --handshake-timeout is dropped and the
recorder waits for the next; connections arriving while a client is served
get an NBD error saying busy. A socket path on which a live server answers is
never taken over, and an existing log is never overwritten without --force.
If the session fails (e.g. the disk fills), the log ends with a mark naming
the failure and without its end record, so it reads as damaged.

With --analyze it also prints the file operations as the guest runs, each as
soon as it is certain (the commit block written, or the flush on ext2), to
stdout or --analyze-output, in --format text, jsonl or csv: the output of
analyze on the log written, line for line. The analysis never slows the
guest: if it falls behind, recording goes on and it continues from the log
(said on stderr). The image must then be one analyze reads (ext2/3/4).

It prints one line when ready, "ext3replay record: ready on unix:PATH" (or
tcp:ADDR), and one summary line when the client disconnects or on
SIGINT/SIGTERM, after finishing the log. Attach QEMU with
  -blockdev driver=nbd,node-name=d0,server.type=unix,server.path=PATH,export= \
  -device virtio-blk-pci,drive=d0
(see docs/capture.md).`,
		Example: `  ext3replay record --image disk.img --log io.log.zst --socket /tmp/d.sock &
  qemu-system-x86_64 -accel tcg ... \
    -blockdev driver=nbd,node-name=d0,server.type=unix,server.path=/tmp/d.sock,export= \
    -device virtio-blk-pci,drive=d0
  ext3replay record --image disk.img --log io.log.zst --listen 127.0.0.1:10809 --read-data
  ext3replay record --image disk.img -o io.log.zst --socket /tmp/d.sock --persistent --analyze --format jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecord(cmd, args, &o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.image, "image", "", "starting disk image (raw, .zst, or qcow2 and the other formats qemu-img reads); only read")
	f.StringVarP(&o.log, "output", "o", "", "native log to write (zstd)")
	f.StringVar(&o.log, "log", "", "native log to write (zstd); the old spelling of -o")
	f.StringVar(&o.socket, "socket", "", "listen on this Unix socket path")
	f.StringVar(&o.listen, "listen", "", "listen on this TCP address (loopback only unless --allow-remote)")
	f.StringVar(&o.state, "state", "", "state file: the evolving disk (default: next to the log)")
	f.BoolVar(&o.readData, "read-data", false, "also log the payload of reads")
	f.DurationVar(&o.handshakeTimeout, "handshake-timeout", blklog.DefaultHandshakeTimeout, "drop a connection that has not finished the NBD negotiation in this time")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow --listen on a non-loopback address (no authentication!)")
	f.BoolVar(&o.force, "force", false, "overwrite an existing log")
	f.BoolVar(&o.analyze, "analyze", false, "also analyse the requests as they are logged and print the operations as they become certain (the output of analyze on the log)")
	f.StringVar(&o.format, "format", "text", "with --analyze: output format: text, jsonl or csv")
	f.StringVar(&o.analyzeOutput, "analyze-output", "", "with --analyze: write the operations to this file (default: stdout; -o names the log)")
	f.BoolVar(&o.metadata, "metadata", false, "with --analyze: as analyze --metadata")
	f.BoolVar(&o.split, "split-at-flush", true, "with --analyze: as analyze --split-at-flush, so no line waits past the next flush (=false: analyze's default order, lines in bursts)")
	f.BoolVar(&o.persistent, "persistent", false, "serve one client after another into the same log and state until SIGINT/SIGTERM (like qemu-nbd -t)")
	return cmd
}

func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// defaultStatePath puts the state file next to the log.
func defaultStatePath(log string) string {
	base := strings.TrimSuffix(log, ".zst")
	return base + ".state.img"
}

func runRecord(cmd *cobra.Command, _ []string, o *recordOptions) error {
	fl := *o
	fl.splitSet = cmd.Flags().Changed("split-at-flush")
	if fl.image == "" || fl.log == "" {
		return usageErr("record: --image and --log are required")
	}
	if err := checkLiveOptions(&fl); err != nil {
		return err
	}
	if (fl.socket == "") == (fl.listen == "") {
		return usageErr("record: give exactly one of --socket and --listen")
	}
	if fl.listen != "" && !fl.allowRemote {
		host, _, err := net.SplitHostPort(fl.listen)
		if err != nil {
			return usageErr("record: --listen %q: %v", fl.listen, err)
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return usageErr("record: --listen %q is not a loopback address; NBD has no authentication (pass --allow-remote to insist)", fl.listen)
		}
	}
	statePath := fl.state
	if statePath == "" {
		statePath = defaultStatePath(fl.log)
	}
	if abs(statePath) == abs(fl.image) || abs(fl.log) == abs(fl.image) || abs(fl.log) == abs(statePath) ||
		sameFile(statePath, fl.image) || sameFile(fl.log, fl.image) || sameFile(fl.log, statePath) {
		return usageErr("record: --image, --log and --state must be three different files (compared by device and inode: a link to BASE is BASE)")
	}
	baseInfo, err := os.Stat(fl.image)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("record: %w", err)}
	}

	// A socket left by an earlier run is stale only if nobody answers on it: never take the path
	// over from a live recorder (or anything else listening), and check before touching any
	// output, which may be that recorder's.
	if fl.socket != "" {
		if st, err := os.Lstat(fl.socket); err == nil && st.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", fl.socket, time.Second); err == nil {
				c.Close()
				return usageErr("record: %s is in use: a live server (another recorder?) accepts connections on it", fl.socket)
			}
		}
	}
	// A log is the record of a run: never lose one to a repeated command line.
	if _, err := os.Lstat(fl.log); err == nil && !fl.force {
		return usageErr("record: %s exists (the log of an earlier run?); choose another -o or pass --force to overwrite it", fl.log)
	}
	// Listen before the slow state copy fails late on a busy address? No:
	// the ready line must mean "connect now", so prepare everything first.
	// A qcow2 (or other qemu-img format) BASE is served as its raw content: converted to a
	// temporary file first (BASE only read), whose content the log's identity then describes, as
	// analyze computes it from the same BASE.
	base := fl.image
	if format, err := diskimage.QemuFormatOf(fl.image); err == nil && format != "" {
		if base, err = diskimage.ConvertToRaw(fl.image, format); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("record: %s: %w", fl.image, err)}
		}
		defer os.Remove(base)
	}
	state, id, err := blklog.PrepareState(base, statePath)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	defer state.Close()
	start := time.Now()
	stateInfo, err := state.Stat()
	if err != nil {
		return &exitError{code: exitInternal, err: fmt.Errorf("record: %w", err)}
	}
	// Create checks again on the opened file, before truncating it: the checks
	// above compare paths that could have changed since.
	hdr := blklog.Header{
		DiskSize:    id.Size,
		Image:       id,
		StartUnixNS: start.UnixNano(),
		Source:      "ext3replay record " + version + " (NBD)",
	}
	lw, err := blklog.Create(fl.log, hdr, baseInfo, stateInfo)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}

	var ln net.Listener
	var where string
	if fl.socket != "" {
		if st, err := os.Lstat(fl.socket); err == nil {
			if st.Mode()&os.ModeSocket == 0 {
				lw.Close()
				return usageErr("record: %s exists and is not a socket", fl.socket)
			}
			os.Remove(fl.socket) // stale: checked above that nobody answers on it
		}
		ln, err = net.Listen("unix", fl.socket)
		where = "unix:" + fl.socket
	} else {
		ln, err = net.Listen("tcp", fl.listen)
		if err == nil {
			where = "tcp:" + ln.Addr().String()
		}
	}
	if err != nil {
		lw.Close()
		return &exitError{code: exitUsage, err: fmt.Errorf("record: %w", err)}
	}

	var sink blklog.Sink = lw
	var la *liveAnalysis
	if fl.analyze {
		// Ready only once the image is indexed: an image the analysis refuses is refused now,
		// and what this run created goes (the log holds nothing yet).
		if la, err = startLiveAnalysis(&fl, cmd.OutOrStdout(), os.Stderr, lw, hdr); err != nil {
			ln.Close()
			lw.CloseDamaged()
			os.Remove(fl.log)
			os.Remove(statePath)
			return err
		}
		sink = la.tee
	}
	rec := &blklog.Recorder{State: state, Size: int64(id.Size), Log: sink, ReadData: fl.readData}
	sess := &blklog.Session{Rec: rec, HandshakeTimeout: fl.handshakeTimeout, Persistent: fl.persistent,
		Logf: func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var (
		mu      sync.Mutex
		sigName string
	)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case s := <-sigs:
			mu.Lock()
			sigName = s.String()
			mu.Unlock()
			sess.Stop() // Run returns; records so far are kept
		case <-stop:
		}
	}()

	fmt.Fprintf(os.Stderr, "ext3replay record: ready on %s\n", where)
	// One client: connections that never finish the NBD negotiation are dropped, later ones
	// are told busy; Run closes the listener (unlinking the Unix socket) before returning.
	serveErr := sess.Run(ln)
	mu.Lock()
	sig := sigName
	mu.Unlock()
	// A failed session (state file or log write failed, e.g. disk full) leaves the log without
	// its end record, after a mark naming the failure: it must not read as a complete run.
	closeErr := blklog.FinishLog(lw, serveErr)
	if err := state.Sync(); err != nil && closeErr == nil {
		closeErr = fmt.Errorf("fsync state file: %w", err)
	}
	var liveErr error
	if la != nil {
		// Its last operations and summary before the recorder's summary line, which stays last.
		liveErr = la.finish(serveErr == nil && closeErr == nil, os.Stderr, false)
	}
	st := rec.Stats()
	var logSize int64
	if fi, err := os.Stat(fl.log); err == nil {
		logSize = fi.Size()
	}
	how := "client disconnected"
	if sig != "" {
		how = "stopped by " + sig
		if fl.persistent {
			n := sess.Clients()
			how += fmt.Sprintf(" (%d client%s served)", n, map[bool]string{true: "s"}[n != 1])
		}
	} else if serveErr != nil {
		how = "failed"
	}
	fmt.Fprintf(os.Stderr, "ext3replay record: %s after %.1fs: %d requests: %d reads (%s), %d writes (%s), %d flushes, %d trims, %d write-zeroes, %d FUA, %d errors; log %s (%d records, %d bytes), state %s\n",
		how, time.Since(start).Seconds(), st.Requests, st.Reads, ops.HumanBytes(st.ReadBytes), st.Writes, ops.HumanBytes(st.WriteBytes),
		st.Flushes, st.Trims, st.WriteZeroes, st.FUA, st.Errors, fl.log, lw.Records(), logSize, statePath)
	if serveErr != nil {
		return &exitError{code: exitInternal, err: fmt.Errorf("record: %w", serveErr)}
	}
	if closeErr != nil {
		return &exitError{code: exitInternal, err: fmt.Errorf("record: %w", closeErr)}
	}
	return liveErr
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// sameFile reports whether paths a and b both exist and are the same file
// (device and inode), whatever links lead to them.
func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}
