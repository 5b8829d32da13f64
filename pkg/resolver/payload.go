package resolver

import (
	"fmt"
	"sort"

	"github.com/ext3replay/ext3replay/internal/sparse"
	"github.com/ext3replay/ext3replay/pkg/blklog"
)

// The payload filter (blklog.PayloadFilter) lets the log reader leave out of large writes the
// blocks the replay would only glance at. A write to a free block or a data block uses its
// content for one thing: putUnowned and applyBatch keep it if it is zeros or could be a map
// node or a directory block (couldBeMetadata), and forget it otherwise. Content that is
// neither, "plain data", can therefore be left out of those blocks without changing anything,
// and the filter decides exactly that, with the same tests on the same (fixed) geometry.
//
// The filter runs ahead of the replay, on the decoding goroutine, and cannot know who owns a
// block when its write is replayed. So it also keeps every block that is not a free or data
// block in the starting image (superblocks, descriptors, bitmaps, inode tables, the journal,
// directories, map nodes), and write checks the owner of every block left out: one that is
// not a free or data block by then (a directory given a freed data block in a transaction the
// reader had not reached, a journal made during the run) has its request read again, whole,
// from the log (Resolver.refetch). The output is the same as with whole payloads, by
// construction; TestPayloadFilterFixtures holds every fixture to it.

// PayloadFilter returns the filter for this resolver's file system, for a log whose records
// refetch gives again, whole, by record number (blklog.PayloadSource.Record). From then on,
// records given to Record may carry omissions (Record.Omitted). Call it before the first
// record: the filter reads a copy of the starting ownership and nothing the resolver changes.
func (r *Resolver) PayloadFilter(refetch func(index int64) (blklog.Record, error)) blklog.PayloadFilter {
	return r.payloadFilter(refetch, keptRuns(r.blocks.idx))
}

// payloadFilter is PayloadFilter keeping the blocks of keep whatever their content.
func (r *Resolver) payloadFilter(refetch func(index int64) (blklog.Record, error), keep blockRuns) blklog.PayloadFilter {
	r.refetch = refetch
	// The model's own geometry, which it never changes: couldBeMetadata's test on it is the
	// one applyBatch makes.
	bs, blocks, ft := uint64(r.bs), r.blocks.m.blocks, r.blocks.m.filetype
	return blklog.PayloadFilter{
		Unit: r.bs,
		Skip: func(off uint64, p []byte) bool {
			b := off / bs
			return b < blocks && !keep.has(b) && PlainData(p, blocks, ft)
		},
	}
}

// PlainData reports content that the replay forgets when written to a free or data block (of
// a file system of blocks blocks, with or without the filetype feature): not zeros, and nothing
// a map node or a directory block could be. The payload filter leaves such content out of the
// log's reading, and the checker out of its memory (pkg/check).
func PlainData(p []byte, blocks uint64, filetype bool) bool {
	return !sparse.IsZero(p) && !couldBeMetadata(p, blocks, filetype)
}

// blockRuns is a sorted list of disjoint block runs.
type blockRuns []struct{ start, end uint64 }

func (rs blockRuns) has(b uint64) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].end > b })
	return i < len(rs) && rs[i].start <= b
}

// keptRuns lists the blocks of x that are neither free nor data, adjacent runs merged.
func keptRuns(x *Index) blockRuns {
	var rs blockRuns
	x.Runs(func(start, n uint64, o Owner) bool {
		if o.Role == RoleFree || o.Role == RoleData {
			return true
		}
		if k := len(rs) - 1; k >= 0 && rs[k].end == start {
			rs[k].end += n
		} else {
			rs = append(rs, struct{ start, end uint64 }{start, start + n})
		}
		return true
	})
	return rs
}

// payloadAgain reads the current write request again, whole, for a block the filter left out
// whose content turns out to count. nil: it could not be read, and the run stops with the error.
func (r *Resolver) payloadAgain(sector uint64, length int64) []byte {
	if r.refetch == nil {
		r.output.fail(fmt.Errorf("resolver: record %d: a block of its payload was left out, and no way to read it again was given", r.now.seq))
		return nil
	}
	rec, err := r.refetch(r.now.seq)
	if err == nil && (rec.Type != blklog.TypeWrite || rec.Sector != sector || int64(rec.Length) != length || int64(len(rec.Data)) != length) {
		err = fmt.Errorf("it is now a %v of %d bytes at sector %d with %d bytes of payload, not the write of %d bytes at sector %d",
			rec.Type, rec.Length, rec.Sector, len(rec.Data), length, sector)
	}
	if err != nil {
		r.output.fail(fmt.Errorf("resolver: record %d: %w", r.now.seq, err))
		return nil
	}
	r.output.stats.ReadAgain++
	return rec.Data
}
