package analysis

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/ext3replay/ext3replay/pkg/blklog"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/partition"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

// Volume is one ext2/3/4 partition of a partitioned disk, as a run analysed it.
type Volume struct {
	Partition partition.Partition
	// Prefix is what its paths are reported under: the --mount point, "N:" by default when the
	// disk has several ext partitions, "" (plain paths) when it has one.
	Prefix string
	// Recovery is the journal recovery its starting state came from (nil with NoRecovery).
	Recovery *ext3fs.Recovery
}

// ParseMount parses a --mount value "N=DIR" (DIR absolute; "/" for the root).
func ParseMount(s string) (int, string, error) {
	n, dir, ok := strings.Cut(s, "=")
	num, err := strconv.Atoi(n)
	if !ok || err != nil || num < 1 {
		return 0, "", fmt.Errorf("--mount %q: want PARTITION=DIR, e.g. 1=/ or 2=/boot", s)
	}
	if !strings.HasPrefix(dir, "/") {
		return 0, "", fmt.Errorf("--mount %q: the mount point must be an absolute path", s)
	}
	return num, path.Clean(dir), nil
}

// prefixPath puts p (a path from the root of a file system) under prefix.
func prefixPath(prefix, p string) string {
	switch {
	case p == "" || prefix == "" || prefix == "/":
		return p
	case strings.HasSuffix(prefix, ":"):
		return prefix + p
	case p == "/":
		return prefix
	}
	return prefix + p
}

// region is a byte range of a partitioned disk and who answers for it: a volume's resolver,
// or a kind reported as it is.
type region struct {
	start, end int64
	vol        *volState
	kind       ops.Kind
	part       int // partition number (0 for table areas and unpartitioned space)
}

type volState struct {
	Volume
	rv    *resolver.Resolver
	guard *SuperblockGuard
	shift uint64 // the partition's first sector on the disk
}

// diskLayout cuts [0, size) into regions from the table: each ext partition a volume, swap and
// other partitions, the table's own sectors, and the rest unpartitioned.
func diskLayout(tab *partition.Table, size int64, vols map[int]*volState, img io.ReaderAt) []region {
	var rs []region
	for _, p := range tab.Partitions {
		r := region{start: p.Start, end: p.End(), part: p.Number, kind: ops.KindPartition}
		switch {
		case vols[p.Number] != nil:
			r.vol = vols[p.Number]
		case p.Kind == partition.KindSwap || isSwap(img, p):
			r.kind = ops.KindSwap
		}
		rs = append(rs, r)
	}
	for _, a := range tab.Areas {
		rs = append(rs, region{start: a.Start, end: a.Start + a.Size, kind: ops.KindPartitionTable})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	// Fill the gaps; areas and partitions do not overlap in a table Read accepted, but an area
	// inside the extended partition's span is fine too: only gaps are filled.
	var out []region
	at := int64(0)
	for _, r := range rs {
		if r.start > at {
			out = append(out, region{start: at, end: r.start, kind: ops.KindUnpartitioned})
		}
		if r.end > at {
			if r.start < at {
				r.start = at
			}
			out = append(out, r)
			at = r.end
		}
	}
	if at < size {
		out = append(out, region{start: at, end: size, kind: ops.KindUnpartitioned})
	}
	return out
}

// isSwap reports a Linux swap signature ("SWAPSPACE2" at the end of the first 4 KiB page).
func isSwap(img io.ReaderAt, p partition.Partition) bool {
	if p.Size < 4096 {
		return false
	}
	var b [10]byte
	_, err := img.ReadAt(b[:], p.Start+4096-10)
	return err == nil && (string(b[:]) == "SWAPSPACE2" || string(b[:]) == "SWAP-SPACE")
}

// find returns the region holding off (regions cover the disk, in order).
func find(rs []region, off int64) *region {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].end > off })
	if i == len(rs) {
		return nil
	}
	return &rs[i]
}

// runPartitioned is Run for a disk with a partition table: one resolver per ext partition,
// each fed the requests inside its partition with sectors shifted to the partition's start;
// requests elsewhere become reads and writes of kind partition-table, swap, partition or
// unpartitioned. Ops come out with disk sectors, the partition number and prefixed paths.
func runPartitioned(in Input, opt Options, tab *partition.Table, res *Result, co opSink) error {
	h := in.Log.Header()
	mounts := opt.Mounts
	var exts []partition.Partition
	for _, p := range tab.Partitions {
		if isFS(io.NewSectionReader(in.Image, p.Start, p.Size)) {
			exts = append(exts, p)
		}
	}
	if len(exts) == 0 {
		return &InputError{fmt.Errorf("%s: a %s-partitioned disk with no ext2/3/4 file system in any of its %d partitions", in.ImageName, tab.Scheme, len(tab.Partitions))}
	}
	byDir := map[string]int{}
	for n, dir := range mounts {
		if m, ok := byDir[dir]; ok {
			return &InputError{fmt.Errorf("--mount %d=%s and --mount %d=%s: two file systems on one mount point would mix their paths", min(m, n), dir, max(m, n), dir)}
		}
		byDir[dir] = n
	}
	for n := range mounts {
		if _, ok := tab.Partition(n); !ok {
			return &InputError{fmt.Errorf("--mount %d=%s: %s has no partition %d", n, mounts[n], in.ImageName, n)}
		}
		found := false
		for _, p := range exts {
			found = found || p.Number == n
		}
		if !found {
			return &InputError{fmt.Errorf("--mount %d=%s: partition %d of %s holds no ext2/3/4 file system", n, mounts[n], n, in.ImageName)}
		}
	}
	vols := map[int]*volState{}
	for _, p := range exts {
		v := &volState{Volume: Volume{Partition: p}, shift: uint64(p.Start / blklog.SectorSize)}
		switch m, ok := mounts[p.Number]; {
		case ok:
			v.Prefix = m
		case len(exts) > 1:
			v.Prefix = strconv.Itoa(p.Number) + ":"
		}
		sec := io.NewSectionReader(in.Image, p.Start, p.Size)
		var err error
		if v.guard, err = NewSuperblockGuard(h, sec, in.LogName); err != nil {
			return &InputError{fmt.Errorf("%s partition %d: %w", in.ImageName, p.Number, err)}
		}
		var start0 io.ReaderAt = sec
		ropt := opt.Resolver
		if !opt.NoRecovery {
			rc, err := ext3fs.Recover(sec)
			if err != nil {
				return &InputError{fmt.Errorf("%s partition %d: journal recovery: %w", in.ImageName, p.Number, err)}
			}
			v.Recovery, start0 = rc, rc
			ropt.MountReplayBlocks = rc.FastCommitBlocks
			ropt.RecoveryProblem = errors.Join(rc.Err, rc.FastCommitErr)
		}
		num, prefix, shift := p.Number, v.Prefix, v.shift
		v.rv, err = resolver.New(start0, p.Size, ropt, func(op *ops.Op) error {
			o := *op
			o.Partition = num
			o.Path, o.To = prefixPath(prefix, o.Path), prefixPath(prefix, o.To)
			if o.IsIO() {
				o.Sector += shift
			}
			return co.Add(&o)
		})
		if err != nil {
			return &InputError{fmt.Errorf("%s partition %d: %w", in.ImageName, p.Number, err)}
		}
		vols[p.Number] = v
	}
	for _, p := range exts {
		res.Volumes = append(res.Volumes, vols[p.Number].Volume)
	}
	if len(res.Volumes) > 0 {
		res.Recovery = res.Volumes[0].Recovery
	}
	layout := diskLayout(tab, in.ImageSize, vols, in.Image)
	if opt.Partitioned != nil {
		opt.Partitioned(tab)
	}
	if opt.Ready != nil {
		opt.Ready()
	}
	st := &res.Stats
	rt := &router{in: in, opt: opt, layout: layout, st: st, co: co, table: map[uint64][]byte{}, madeFS: map[int]bool{}}
	var last blklog.Record // the log's last record, as a mark
	for {
		rec, err := in.Log.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !isDamage(err) {
				return err
			}
			res.Damage = err
			break
		}
		if opt.Tap != nil {
			opt.Tap(&rec)
		}
		if err := rt.route(&rec); err != nil {
			return err
		}
		memoryTick()
		last = blklog.Record{Index: rec.Index, Type: blklog.TypeMark, Flags: rec.Flags & blklog.FlagHasTime, TimeNS: rec.TimeNS}
	}
	for _, p := range exts {
		// What a file system reports only at the end carries the record it was made certain
		// by: the log's last, which this partition may not have seen (a mark moves it there).
		if last.Type == blklog.TypeMark {
			if err := vols[p.Number].rv.Record(&last); err != nil {
				return err
			}
		}
		if err := vols[p.Number].rv.Finish(); err != nil {
			return err
		}
	}
	for _, p := range exts {
		s := vols[p.Number].rv.Stats()
		st.Transactions += s.Transactions
		st.UnattributedWriteBytes += s.UnattributedWriteBytes
		st.UnattributedReadBytes += s.UnattributedReadBytes
		st.Anomalies += s.Anomalies
		st.DroppedUnowned += s.DroppedUnowned
		st.JournalPending += s.JournalPending
		st.FastCommitBlocks += s.FastCommitBlocks
		for t, n := range s.Ops {
			st.Ops[t] += n
		}
	}
	return nil
}

// router hands the pieces of each record to the regions of a partitioned disk.
type router struct {
	in     Input
	opt    Options
	layout []region
	st     *resolver.Stats
	co     opSink
	// table holds the sectors of the partition table as the log has left them (those written
	// so far), to tell a rewrite that changes the table from one that writes it again.
	table map[uint64][]byte
	// madeFS: partitions reported as given a file system during the run.
	madeFS map[int]bool
}

// route counts rec and hands each piece of it to the region that holds it.
func (rt *router) route(rec *blklog.Record) error {
	in, opt, layout, st, co := rt.in, rt.opt, rt.layout, rt.st, rt.co
	st.Records++
	t := 0.0
	if rec.Flags&blklog.FlagHasTime != 0 {
		t = float64(rec.TimeNS) / 1e9
	}
	full := len(rec.Data) >= int(rec.Length) && rec.Flags&blklog.FlagNoPayload == 0
	switch rec.Type {
	case blklog.TypeRead:
		st.Reads++
		st.BytesRead += int64(rec.Length)
	case blklog.TypeWrite, blklog.TypeWriteZeroes:
		st.Writes++
		st.BytesWritten += int64(rec.Length)
		if rec.Type == blklog.TypeWrite && !full {
			st.NoPayloadWrites++
		}
	case blklog.TypeFlush, blklog.TypeMark:
		if rec.Type == blklog.TypeFlush {
			st.Flushes++
		} else {
			st.Others++
		}
		// Every file system sees the flush: it is an ordering point for each.
		for _, r := range layout {
			if r.vol != nil {
				if err := r.vol.rv.Record(rec); err != nil {
					return err
				}
			}
		}
		return nil
	case blklog.TypeDiscard:
		st.Discards++
	default:
		st.Others++
		return nil
	}
	if err := blklog.CheckDeviceRange(rec, uint64(in.ImageSize)); err != nil {
		st.Anomalies++
		st.Ops[ops.Anomaly]++
		return co.Add(&ops.Op{Seq: rec.Index, T: t, Op: ops.Anomaly, Reason: err.Error()})
	}
	off0, end0, _ := rec.ByteRange()
	changed := ""
	for off, end := int64(off0), int64(end0); off < end; {
		r := find(layout, off)
		if r == nil {
			break // unreachable: the range check above keeps off inside the disk
		}
		pend := min(end, r.end)
		if r.vol != nil {
			sub := *rec
			sub.Sector = uint64(off-r.start) / blklog.SectorSize
			sub.Length = uint32(pend - off)
			sub.Data = nil
			if full {
				sub.Data = rec.Data[off-int64(off0) : pend-int64(off0)]
			} else if rec.Type == blklog.TypeWrite {
				sub.Flags |= blklog.FlagNoPayload
			}
			if err := r.vol.guard.Check(&sub); err != nil {
				return &InputError{fmt.Errorf("%w (image %s, partition %d)", err, in.ImageName, r.part)}
			}
			if err := r.vol.rv.Record(&sub); err != nil {
				return err
			}
		} else if (rec.Type == blklog.TypeWrite || rec.Type == blklog.TypeWriteZeroes) && r.kind == ops.KindPartitionTable {
			// Every piece updates the table's sectors; the first change is the one reported.
			if c := rt.tableChange(rec, off, pend, int64(off0), full); changed == "" {
				changed = c
			}
		}
		if r.vol == nil && r.part != 0 && rec.Type == blklog.TypeWrite && full && changed == "" && !rt.madeFS[r.part] {
			if changed = newFS(rec, off, pend, int64(off0), r); changed != "" {
				rt.madeFS[r.part] = true // once: mkfs writes the superblock more than once
			}
		}
		if r.vol == nil && rec.Type != blklog.TypeDiscard && (r.kind != ops.KindPartitionTable || opt.Resolver.Metadata) {
			typ := ops.Read
			if rec.Type != blklog.TypeRead {
				typ = ops.Write
			}
			st.Ops[typ]++
			if err := co.Add(&ops.Op{Seq: rec.Index, T: t, Op: typ, Sector: uint64(off) / blklog.SectorSize,
				Bytes: pend - off, Kind: r.kind, Partition: r.part}); err != nil {
				return err
			}
		}
		off = pend
	}
	if changed != "" {
		// The table is read once, from the starting image: say so where the guest changed it.
		st.Anomalies++
		st.Ops[ops.Anomaly]++
		return co.Add(&ops.Op{Seq: rec.Index, T: t, Op: ops.Anomaly, Sector: uint64(off0) / blklog.SectorSize, Reason: changed})
	}
	return nil
}

// tableChange compares what rec writes to the table bytes [off, end) with what they held and
// returns a description if it changes them ("" if it writes them again as they were).
func (rt *router) tableChange(rec *blklog.Record, off, end, off0 int64, full bool) string {
	what := fmt.Sprintf("record %d rewrites the partition table (sectors %d-%d)", rec.Index, off/blklog.SectorSize, (end-1)/blklog.SectorSize)
	if rec.Type == blklog.TypeWrite && !full {
		return what + " with content the log does not have: partitions are read once, from the starting image"
	}
	diff := false
	for s := off / blklog.SectorSize; s*blklog.SectorSize < end; s++ {
		cur := rt.table[uint64(s)]
		if cur == nil {
			cur = make([]byte, blklog.SectorSize)
			if _, err := rt.in.Image.ReadAt(cur, s*blklog.SectorSize); err != nil && err != io.EOF {
				return what
			}
			rt.table[uint64(s)] = cur
		}
		lo, hi := max(off, s*blklog.SectorSize), min(end, (s+1)*blklog.SectorSize)
		dst := cur[lo-s*blklog.SectorSize : hi-s*blklog.SectorSize]
		var src []byte
		if rec.Type == blklog.TypeWrite {
			src = rec.Data[lo-off0 : hi-off0]
		} else {
			src = make([]byte, len(dst)) // write-zeroes
		}
		if string(src) != string(dst) {
			diff = true
			copy(dst, src)
		}
	}
	if !diff {
		return ""
	}
	return what + ": partitions are read once, from the starting image; one added, moved or resized during the run is not followed"
}

// newFS reports a write of an ext2/3/4 superblock (its magic at byte 56) into a partition that
// held no ext file system at the start (mkfs in the guest): it is not followed.
func newFS(rec *blklog.Record, off, end, off0 int64, r *region) string {
	at := r.start + ext3fs.SuperblockOffset + 56
	if at < off || at+2 > end {
		return ""
	}
	b := rec.Data[at-off0:]
	if b[0] != 0x53 || b[1] != 0xEF {
		return ""
	}
	return fmt.Sprintf("record %d writes an ext2/3/4 superblock into partition %d, which held no ext file system at the start (mkfs during the run): its file operations are not followed", rec.Index, r.part)
}

// PartitionLog is log as partition p's file system sees it: the requests inside p (cut at its
// boundaries) with sectors counted from p's start; flushes and marks as they are; requests
// elsewhere left out. Record indexes stay the log's, so what a consumer reports names the
// log's own records. For tools that take one file system (check); analyze routes every
// partition at once instead.
func PartitionLog(log blklog.Reader, p partition.Partition) blklog.Reader {
	return &partitionLog{Reader: log, p: p}
}

type partitionLog struct {
	blklog.Reader
	p partition.Partition
}

// Header has no image identity: the log's, if any, is the whole disk's, not the partition's.
func (l *partitionLog) Header() blklog.Header {
	h := l.Reader.Header()
	h.Image = blklog.ImageID{}
	h.DiskSize = uint64(l.p.Size)
	return h
}

func (l *partitionLog) Next() (blklog.Record, error) {
	for {
		rec, err := l.Reader.Next()
		if err != nil || rec.Type == blklog.TypeFlush || rec.Type == blklog.TypeMark {
			return rec, err
		}
		off, end, ok := rec.ByteRange()
		if !ok {
			return rec, nil // the consumer's range check reports it
		}
		lo, hi := max(int64(off), l.p.Start), min(int64(end), l.p.End())
		if lo >= hi {
			continue
		}
		full := len(rec.Data) >= int(rec.Length)
		sub := rec
		sub.Sector = uint64(lo-l.p.Start) / blklog.SectorSize
		sub.Length = uint32(hi - lo)
		if full {
			sub.Data = rec.Data[lo-int64(off) : hi-int64(off)]
		} else {
			sub.Data = nil
			if rec.Type == blklog.TypeWrite {
				sub.Flags |= blklog.FlagNoPayload
			}
		}
		return sub, nil
	}
}
