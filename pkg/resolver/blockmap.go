package resolver

import (
	"encoding/binary"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// blockMap is a scheme by which an inode's i_block maps the inode's blocks: the ext2/3
// indirect map (indirectMap) now; ext4's extent tree goes beside it, as another
// implementation returned by mapOf with its node role in roleTable. The generic code
// (inodes.go, ownership.go, batch.go) calls a scheme at the events of a map's life and keeps
// the bookkeeping (claims, releases, shadows, credited node content); the scheme only
// decodes i_block and its nodes and says what they map, through Resolver.claimData,
// Resolver.claimNode and Resolver.release.
type blockMap interface {
	// diffRoot updates ownership for inode ino's i_block going from old to cur: it releases
	// what old maps and cur does not, then claims what cur maps and old did not. All zeros
	// stands for no map (a new inode, or one whose blocks all go). role is the role of its
	// data. (i_block is passed by value: a pointer would make every decoded inode escape.)
	diffRoot(r *Resolver, ino uint32, role Role, old, cur [15]uint32, blk uint64)
	// releaseChanged releases, for ino, what node content old (of node role nrole) maps and
	// cur does not; cur nil releases everything old maps.
	releaseChanged(r *Resolver, ino uint32, nrole Role, old, cur []byte)
	// claimChildren claims, for ino, what node b (node role nrole, mapping from file block
	// base) maps in cur and did not in old; old nil claims everything.
	claimChildren(r *Resolver, ino uint32, role Role, b uint64, nrole Role, base uint64, old, cur []byte)
	// plausibleNode reports whether c could be the content of a node of role nrole: home
	// writes of content that cannot be are held as suspects (held.go).
	plausibleNode(r *Resolver, nrole Role, c []byte) bool
}

// mapOf is the block-map scheme of an inode, nil if the resolver does not follow its blocks
// (not allocated, or no blocks: a fast symlink, a device, inline data).
func mapOf(in *ext3fs.Inode) blockMap {
	switch {
	case in == nil || !in.Allocated() || !in.HasBlocks():
		return nil
	case in.UsesExtents():
		return extentMap{}
	}
	return indirectMap{}
}

// indirectMap is the ext2/3 block map: i_block[0..11] point at data blocks, i_block[12..14]
// at an indirect, double-indirect and triple-indirect block, whose pointers point at data
// blocks or at the next level down (e2fsprogs lib/ext2fs/block.c).
type indirectMap struct{}

// indNodeRoles is the node role by its level (pointers below it); level 0 is data.
var indNodeRoles = [4]Role{RoleData, RoleInd, RoleDInd, RoleTInd}

// span is how many file blocks one pointer of a map block at level covers (level 1 = IND).
func (r *Resolver) span(level int) uint64 {
	p := uint64(r.bs / 4)
	s := uint64(1)
	for i := 1; i < level; i++ {
		s *= p
	}
	return s
}

// indBase is the first file block i_block[12+k] can map.
func (r *Resolver) indBase(k int) uint64 {
	p := uint64(r.bs / 4)
	switch k {
	case 0:
		return 12
	case 1:
		return 12 + p
	}
	return 12 + p + p*p
}

func (indirectMap) diffRoot(r *Resolver, ino uint32, role Role, old, cur [15]uint32, blk uint64) {
	for k := 0; k < ext3fs.NDirBlocks; k++ {
		if old[k] != cur[k] {
			r.release(ino, uint64(old[k]), RoleData)
		}
	}
	for k := 0; k < 3; k++ {
		if old[12+k] != cur[12+k] {
			r.release(ino, uint64(old[12+k]), indNodeRoles[k+1])
		}
	}
	var rb runBuilder
	for k := 0; k < ext3fs.NDirBlocks; k++ {
		if old[k] != cur[k] && cur[k] != 0 {
			r.claimData(&rb, ino, role, uint64(cur[k]), uint64(k), blk)
		}
	}
	r.flushRun(&rb)
	for k := 0; k < 3; k++ {
		if old[12+k] != cur[12+k] && cur[12+k] != 0 {
			r.claimNode(ino, role, uint64(cur[12+k]), indNodeRoles[k+1], r.indBase(k), blk)
		}
	}
}

// ptr is pointer i of indirect-block content c (0 past its end).
func ptr(c []byte, i int) uint32 {
	if 4*i+4 > len(c) {
		return 0
	}
	return binary.LittleEndian.Uint32(c[4*i:])
}

func (indirectMap) releaseChanged(r *Resolver, ino uint32, nrole Role, old, cur []byte) {
	child := indNodeRoles[roleTable[nrole].mapLevel-1]
	for i := 0; i < len(old)/4; i++ {
		if p := ptr(old, i); cur == nil || (4*i+4 <= len(cur) && p != ptr(cur, i)) {
			r.release(ino, uint64(p), child)
		}
	}
}

func (indirectMap) claimChildren(r *Resolver, ino uint32, role Role, b uint64, nrole Role, base uint64, old, cur []byte) {
	level := roleTable[nrole].mapLevel
	sp := r.span(level)
	var rb runBuilder
	for i := 0; i < len(cur)/4; i++ {
		p := ptr(cur, i)
		if p == 0 || (old != nil && 4*i+4 <= len(old) && ptr(old, i) == p) {
			continue
		}
		if level == 1 {
			r.claimData(&rb, ino, role, uint64(p), base+uint64(i), b)
		} else if !r.claimNode(ino, role, uint64(p), indNodeRoles[level-1], base+uint64(i)*sp, b) {
			break // a corrupt node: the rest of its pointers are not followed either
		}
	}
	r.flushRun(&rb)
}

func (indirectMap) plausibleNode(r *Resolver, _ Role, c []byte) bool {
	return ext3fs.IndirectInRange(c, r.nblk)
}
