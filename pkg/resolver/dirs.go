package resolver

import (
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// dent is a directory entry as credited: name and inode.
type dent struct {
	name string
	ino  uint32
}

type linkKey struct {
	parent uint32
	name   string
	ino    uint32
}

// parseDents decodes a directory block into credited entries ("." and ".." left out), in a
// slice of their exact number: walked into a scratch slice kept from one call to the next
// rather than through ParseDirBlock's entries, which grew a slice of 48-byte records per block
// (a log deleting 50,000 files parses thousands of blocks of names).
func (r *Resolver) parseDents(b []byte) ([]dent, error) {
	scratch := r.dentScratch[:0]
	err := ext3fs.WalkDirBlock(b, r.ft, func(e *ext3fs.DirEntry, name []byte) error {
		if string(name) != "." && string(name) != ".." {
			scratch = append(scratch, dent{string(name), e.Inode})
		}
		return nil
	})
	out := make([]dent, len(scratch))
	copy(out, scratch)
	clear(scratch) // drop the names
	r.dentScratch = scratch[:0]
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimDirBlock credits the entries of a block that just became part of directory dir. Its
// content counts only if it was written during the log (see claimMap).
func (r *Resolver) claimDirBlock(b uint64, dir uint32) {
	r.blocks.m.owned(b)
	var ents []dent
	if r.blocks.m.written(b) {
		var err error
		if ents, err = r.parseDents(r.blocks.m.block(b)); err != nil {
			r.anomaly(r.bestPath(dir), b, "directory block %d: %v", b, err)
			ents = nil
		}
	}
	r.blocks.credDir[b] = ents
	r.applyDents(b, dir, nil, ents)
}

// releaseDirBlock withdraws the entries of a block directory dir no longer owns.
func (r *Resolver) releaseDirBlock(b uint64, dir uint32) {
	ents, ok := r.blocks.credDir[b]
	if !ok {
		ents, _ = r.parseDents(r.blocks.m.block(b))
	}
	delete(r.blocks.credDir, b)
	r.applyDents(b, dir, ents, nil)
}

// diffDirBlock handles a write to a block its directory already owned.
func (r *Resolver) diffDirBlock(b uint64, dir uint32, old, cur []byte) {
	olds, ok := r.blocks.credDir[b]
	if !ok {
		olds, _ = r.parseDents(old)
	}
	news, err := r.parseDents(cur)
	if err != nil {
		// Keep the credited entries: a block that does not chain says nothing reliable.
		r.anomaly(r.bestPath(dir), b, "directory block %d: %v", b, err)
		return
	}
	r.blocks.credDir[b] = news
	r.applyDents(b, dir, olds, news)
}

// applyDents turns the difference between two versions of one directory block into link
// events. A name whose inode changed inside the block is a replacement (rename over).
func (r *Resolver) applyDents(b uint64, dir uint32, olds, news []dent) {
	if len(olds) == 0 && len(news) == 0 {
		return
	}
	// Entries equal at the same place in both versions cancel out: when a name is added to or
	// removed from a block of hundreds, only the differing middle is counted, without a map.
	for len(olds) > 0 && len(news) > 0 && olds[0] == news[0] {
		olds, news = olds[1:], news[1:]
	}
	for len(olds) > 0 && len(news) > 0 && olds[len(olds)-1] == news[len(news)-1] {
		olds, news = olds[:len(olds)-1], news[:len(news)-1]
	}
	removed, added := olds, news
	var repl, with map[string]uint32
	if len(olds) > 0 && len(news) > 0 {
		count := make(map[dent]int, len(olds)+len(news))
		for _, d := range olds {
			count[d]--
		}
		for _, d := range news {
			count[d]++
		}
		removed, added = nil, nil
		for _, d := range olds {
			if count[d] < 0 {
				removed = append(removed, d)
				count[d]++
			}
		}
		for _, d := range news {
			if count[d] > 0 {
				added = append(added, d)
				count[d]--
			}
		}
		// Replacements: same name, another inode.
		repl = map[string]uint32{} // name -> inode it had before
		for _, d := range removed {
			repl[d.name] = d.ino
		}
		with = map[string]uint32{} // name -> inode it has now
		for _, d := range added {
			if j, ok := repl[d.name]; ok && j != d.ino {
				with[d.name] = d.ino
			}
		}
	}
	// Removals first: their paths are taken before the names change.
	for _, d := range removed {
		r.unlinkName(dir, d.name, d.ino, with[d.name], b)
	}
	for _, d := range added {
		var displaced uint32
		if with[d.name] == d.ino {
			displaced = repl[d.name]
		}
		r.linkName(dir, d.name, d.ino, displaced, b)
	}
}

func (r *Resolver) cnt(k linkKey) int {
	if c, ok := r.ns.linkCnt[k]; ok {
		return c
	}
	if r.ns.names.Has(k.ino, Link{Parent: k.parent, Name: k.name}) {
		return 1
	}
	return 0
}

func (r *Resolver) setCnt(k linkKey, c int) {
	if c == 0 || c == 1 {
		// 0 and 1 agree with the names table once it is updated: no need to remember.
		delete(r.ns.linkCnt, k)
		return
	}
	r.ns.linkCnt[k] = c
}

// linkName records entry (dir, name) -> ino appearing in a block. Only the first appearance of a
// link is an event (an htree split copies entries between blocks in either order).
func (r *Resolver) linkName(dir uint32, name string, ino uint32, displaced uint32, blk uint64) {
	if ino > r.fs.SB.InodesCount {
		r.anomaly(r.bestPath(dir), blk, "directory entry %q points to inode %d past the last inode %d", name, ino, r.fs.SB.InodesCount)
		return
	}
	k := linkKey{dir, name, ino}
	if r.fcConfirmed(k, fcAdded) {
		return // a fast commit reported it already
	}
	c := r.cnt(k) + 1
	r.setCnt(k, c)
	if c != 1 {
		return
	}
	r.ns.names.Add(dir, name, ino)
	r.ns.namesGen++
	p := r.pendFor(ino)
	l := Link{Parent: dir, Name: name}
	r.ns.evOrd++
	r.noteEvent(p, ino)
	p.adds = append(p.adds, nameEv{l: l, seq: r.now.seq, ord: r.ns.evOrd, displaced: displaced})
	r.ns.touched.add(ino)
}

// unlinkName records entry (dir, name) -> ino disappearing from a block.
func (r *Resolver) unlinkName(dir uint32, name string, ino uint32, replacedBy uint32, blk uint64) {
	if ino > r.fs.SB.InodesCount {
		return
	}
	k := linkKey{dir, name, ino}
	if r.fcConfirmed(k, fcRemoved) {
		return // a fast commit reported it already
	}
	c := r.cnt(k) - 1
	if c < 0 {
		c = 0
	}
	r.setCnt(k, c)
	if c != 0 {
		return
	}
	l := Link{Parent: dir, Name: name}
	path := r.linkPath(l)
	r.ns.names.Remove(dir, name, ino)
	r.ns.namesGen++
	p := r.pendFor(ino)
	r.ns.evOrd++
	r.noteEvent(p, ino)
	p.rems = append(p.rems, nameEv{l: l, path: path, seq: r.now.seq, ord: r.ns.evOrd, replacedBy: replacedBy})
	r.ns.touched.add(ino)
}

// dropLink removes a link from the names table without an event (the caller reports it).
func (r *Resolver) dropLink(l Link, ino uint32) {
	delete(r.ns.linkCnt, linkKey{l.Parent, l.Name, ino})
	r.ns.names.Remove(l.Parent, l.Name, ino)
	r.ns.namesGen++
}

// linkPath is the full path of entry l.
func (r *Resolver) linkPath(l Link) string {
	if p := r.ns.names.ChildPath(l.Parent, l.Name); p != "" {
		return p
	}
	return r.bestPath(l.Parent) + "/" + l.Name
}

// inlineDents decodes the entries of an inline directory (ext4 inline_data: the entries are in
// i_block and the inode's system.data attribute; raw is the inode record), ".." left out. A
// directory that is not inline has none.
func inlineDents(in *ext3fs.Inode, raw []byte, filetype bool) ([]dent, error) {
	if in == nil || !in.HasInlineData() || in.Type() != ext3fs.TypeDir || !in.Allocated() {
		return nil, nil
	}
	data, err := ext3fs.InlineData(in, raw)
	if err != nil {
		return nil, err
	}
	es, err := ext3fs.InlineDirEntries(data, filetype)
	out := make([]dent, 0, len(es))
	for _, e := range es {
		if e.Name != ".." && e.Name != "." {
			out = append(out, dent{e.Name, e.Inode})
		}
	}
	return out, err
}
